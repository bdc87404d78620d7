/**
 * Attack tests: an HTTP approval binds what the approver approved and nothing else, and the
 * approver is shown what the grant covers. Target: a real Express app (express 5, default
 * settings) that records every request it receives before routing, the witness that an
 * unapproved request never ran. Attacks: a grant one rule's approvers gave spent on a request
 * another rule governs (staging approval, production request); the same request with a header
 * the target acts on changed; a binary body and a body past the display limit the approver
 * could not read; a held approval left pending after its client went away.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Server } from "node:http";
import { after, before, describe, it } from "node:test";
import express from "express";
import type { Approval } from "../../src/approvals/approval.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const APPROVER = (groups: string[]) => ({ sub: "approver-1", groups, iss: "dev", exp: 0, run: {} });

describe("HTTP approvals bind what was approved", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let server: Server;
  const arrived: { url: string; headers: Record<string, unknown>; bytes: number }[] = [];
  let token = "";

  before(async () => {
    const app = express();
    app.use(express.raw({ type: () => true, limit: "1mb" }));
    app.use((req, res) => {
      arrived.push({ url: req.originalUrl, headers: req.headers, bytes: Buffer.isBuffer(req.body) ? req.body.length : 0 });
      res.json({ ran: req.originalUrl, env: req.headers["x-env"] ?? null });
    });
    server = await new Promise<Server>((resolve) => { const s = app.listen(0, "127.0.0.1", () => resolve(s)); });
    target = await startTarget();
    gw = await startTestGateway({
      target,
      connections: [
        { name: "billing", type: "http", target: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }, access: ["agents"], max_request_body: "1MB" },
      ],
      overrides: {
        rules: [
          { name: "staging-refunds", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/refunds/**"], headers: { "x-env": "staging" } } }, action: "approve", approvers: ["staging-ops"] },
          { name: "refunds", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/refunds/**"] } }, action: "approve", approvers: ["security"] },
          { name: "uploads", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/uploads"] } }, action: "approve", approvers: ["security"] },
        ],
      },
    });
    token = await gw.token("agent-1", ["agents"]);
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  const post = async (path: string, body: Buffer | string, headers: Record<string, string> = {}, signal?: AbortSignal) => {
    const res = await fetch(`http://127.0.0.1:${gw.httpPort}/c/billing${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", prefer: "respond-async", ...headers },
      body: typeof body === "string" ? body : new Uint8Array(body),
      ...(signal ? { signal } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: JSON.parse(text) as { approval_id?: string; error?: string; env?: string | null } };
  };
  const approval = (id: string): Approval => gw.gw.approvals.get(id)!;

  it("a grant from the staging rule's approvers does not run the production request", async () => {
    const body = JSON.stringify({ amount: 500 });
    const staging = await post("/v1/refunds/1", body, { "x-env": "staging" });
    assert.equal(staging.status, 428);
    assert.equal(approval(staging.json.approval_id!).rule, "staging-refunds");
    gw.gw.approvals.decide(staging.json.approval_id!, APPROVER(["staging-ops"]), "approve");
    const before = arrived.length;
    // Same method, path and body; the header sends it to production, under the other rule.
    const prod = await post("/v1/refunds/1", body, { "x-env": "prod" });
    assert.equal(prod.status, 428, "the staging grant must not satisfy the production rule");
    assert.equal(approval(prod.json.approval_id!).rule, "refunds");
    assert.equal(arrived.length, before, "the production refund never reached the target");
    // The grant still serves what it was given for, once.
    const again = await post("/v1/refunds/1", body, { "x-env": "staging" });
    assert.equal(again.status, 200);
    assert.equal(again.json.env, "staging");
  });

  it("a grant for a request does not run it with a header the target acts on changed, but a new trace id is fine", async () => {
    const body = JSON.stringify({ amount: 7 });
    const first = await post("/v1/refunds/2", body, { "x-tenant": "sandbox", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
    assert.equal(first.status, 428);
    const shown = approval(first.json.approval_id!).operation.display;
    assert.match(shown, /^x-tenant: sandbox$/m, "the approver sees the header the grant is bound to");
    gw.gw.approvals.decide(first.json.approval_id!, APPROVER(["security"]), "approve");
    const before = arrived.length;
    assert.equal((await post("/v1/refunds/2", body, { "x-tenant": "production" })).status, 428);
    assert.equal((await post("/v1/refunds/2", body, { "x-tenant": "sandbox", "x-extra": "1" })).status, 428);
    assert.equal(arrived.length, before, "neither altered request ran");
    const retry = await post("/v1/refunds/2", body, { "x-tenant": "sandbox", traceparent: "00-11111111111111111111111111111111-2222222222222222-01" });
    assert.equal(retry.status, 200, "a retry with a new trace context uses the grant");
  });

  it("a binary body is described to the approver by size and SHA-256, and the grant is bound to those bytes", async () => {
    const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    const headers = { "content-type": "application/octet-stream" };
    const first = await post("/v1/uploads", bytes, headers);
    assert.equal(first.status, 428);
    const shown = approval(first.json.approval_id!).operation.display;
    const sha = createHash("sha256").update(bytes).digest("hex");
    assert.match(shown, new RegExp(`binary body \\(application/octet-stream\\), not shown: 3000 bytes, sha256 ${sha}`));
    gw.gw.approvals.decide(first.json.approval_id!, APPROVER(["security"]), "approve");
    const altered = Buffer.from(bytes);
    altered.writeUInt8(altered.readUInt8(2999) ^ 1, 2999);
    assert.equal((await post("/v1/uploads", altered, headers)).status, 428, "one flipped byte needs its own approval");
    assert.equal((await post("/v1/uploads", bytes, headers)).status, 200);
    assert.equal(arrived.at(-1)!.bytes, 3000);
  });

  it("a body past the display limit says so: what is shown, the whole size and its SHA-256", async () => {
    const body = JSON.stringify({ note: "x".repeat(100_000), amount: 9_999_999 });
    const first = await post("/v1/refunds/3", body);
    assert.equal(first.status, 428);
    const shown = approval(first.json.approval_id!).operation.display;
    const total = Buffer.byteLength(body);
    assert.ok(!shown.includes("9999999"), "the tail is not shown");
    assert.match(shown, new RegExp(`body clipped for display: the first 65536 of ${total} bytes are shown; approving covers all ${total} bytes, sha256 ${createHash("sha256").update(body).digest("hex")}`));
  });

  it("a held approval is cancelled when its client goes away, and the request never runs", async () => {
    const abort = new AbortController();
    const before = arrived.length;
    const held = fetch(`http://127.0.0.1:${gw.httpPort}/c/billing/v1/refunds/4`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}", signal: abort.signal,
    }).catch(() => undefined);
    let pending: Approval | undefined;
    for (let i = 0; i < 500 && !pending; i++) {
      pending = gw.gw.approvals.list({ state: "pending" }).find((a) => a.operation.display.startsWith("POST /v1/refunds/4"));
      if (!pending) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(pending, "the request is held on an approval");
    abort.abort();
    await held;
    let state = approval(pending.id).state;
    for (let i = 0; i < 500 && state === "pending"; i++) {
      await new Promise((r) => setTimeout(r, 10));
      state = approval(pending.id).state;
    }
    assert.equal(state, "cancelled");
    assert.match(approval(pending.id).reason ?? "", /client left/);
    // Approving it now is refused, and nothing ran.
    assert.throws(() => gw.gw.approvals.decide(pending.id, APPROVER(["security"]), "approve"));
    assert.equal(arrived.length, before);
  });
});
