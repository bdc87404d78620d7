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
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import express from "express";
import type { Approval } from "../../src/approvals/approval.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { type LocalHttpTarget, listenLocal } from "../support/http-target.js";

const APPROVER = (groups: string[]) => ({ sub: "approver-1", groups, iss: "dev", exp: 0, run: {} });

describe("HTTP approvals bind what was approved", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let server: LocalHttpTarget;
  const arrived: { url: string; headers: Record<string, unknown>; bytes: number }[] = [];
  let token = "";

  before(async () => {
    const app = express();
    app.use(express.raw({ type: () => true, limit: "1mb" }));
    app.use((req, res) => {
      arrived.push({ url: req.originalUrl, headers: req.headers, bytes: Buffer.isBuffer(req.body) ? req.body.length : 0 });
      res.json({ ran: req.originalUrl, env: req.headers["x-env"] ?? null });
    });
    server = await listenLocal(app);
    target = await startTarget();
    gw = await startTestGateway({
      target,
      connections: [
        { name: "billing", type: "http", target: { url: server.url }, access: ["agents"], max_request_body: "1MB" },
      ],
      overrides: {
        approvals: { max_pending_per_identity: 30 },
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
    assert.match(shown, new RegExp(`^\\[body: 3000 bytes, sha256 ${sha}\\]$`, "m"));
    assert.match(shown, /binary body \(application\/octet-stream\), not shown: 3000 bytes/);
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
    assert.match(shown, new RegExp(`^\\[body: ${total} bytes, sha256 ${createHash("sha256").update(body).digest("hex")}\\]$`, "m"));
    assert.match(shown, new RegExp(`body clipped for display: the first 65536 of ${total} bytes are shown; approving covers all ${total} bytes`));
  });

  it("the Host the agent sent (X-Forwarded-Host at the target) is bound and shown", async () => {
    const body = JSON.stringify({ amount: 5000 });
    // fetch() sets Host itself; an attacker's client sends what it likes.
    const withHost = (host: string) => new Promise<{ status: number; json: { approval_id?: string } }>((resolve, reject) => {
      const r = httpRequest({ host: "127.0.0.1", port: gw.httpPort, method: "POST", path: "/c/billing/v1/refunds/5", headers: { host, authorization: `Bearer ${token}`, "content-type": "application/json", prefer: "respond-async" } }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => { text += c.toString(); });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { approval_id?: string } }));
      });
      r.on("error", reject);
      r.end(body);
    });
    const first = await withHost("sandbox.bank.example");
    assert.equal(first.status, 428);
    assert.match(approval(first.json.approval_id!).operation.display, /^x-forwarded-host: sandbox\.bank\.example$/m);
    gw.gw.approvals.decide(first.json.approval_id!, APPROVER(["security"]), "approve");
    const before = arrived.length;
    assert.equal((await withHost("prod.bank.example")).status, 428);
    assert.equal(arrived.length, before);
    assert.equal((await withHost("sandbox.bank.example")).status, 200);
    assert.equal(arrived.at(-1)!.headers["x-forwarded-host"], "sandbox.bank.example");
  });

  it("an encoded '?' or '#' in the path is refused: it would read as a query to the rules and the approver", async () => {
    const before = arrived.length;
    for (const path of ["/v1/refunds/42%3Fdry_run=true", "/v1/refunds/42%23x", "/v1/refunds/42%3f"]) {
      assert.equal((await post(path, "{}")).status, 400, path);
    }
    assert.equal(arrived.length, before);
  });

  it("a content-coded body is described, not shown as text; terminal escapes and bidi overrides are shown escaped", async () => {
    const gz = await post("/v1/refunds/6", gzipSync(JSON.stringify({ amount: 9_000_000 })), { "content-encoding": "gzip" });
    assert.equal(gz.status, 428);
    const shown = approval(gz.json.approval_id!).operation.display;
    assert.match(shown, /\[body in content coding gzip, not shown: \d+ bytes\]/);
    assert.doesNotMatch(shown, /\x1f/, "no compressed bytes in the display");
    const tricky = await post("/v1/refunds/7", "amount=900000&x=\x1b[2K\x1b[1G amount=10 \u202etxt.exe", { "content-type": "application/x-www-form-urlencoded" });
    const text = approval(tricky.json.approval_id!).operation.display;
    assert.doesNotMatch(text, /[\x1b\u202e]/);
    assert.match(text, /amount=900000&x=\\u\{001b\}\[2K\\u\{001b\}\[1G amount=10 \\u\{202e\}txt\.exe/);
  });

  it("a long header is shown whole, after the body's size and SHA-256", async () => {
    const body = JSON.stringify({ amount: 9_000_000 });
    const r = await post("/v1/refunds/8", body, { "x-pad": "p".repeat(2400), "x-tenant": `${"s".repeat(300)}prod` });
    const shown = approval(r.json.approval_id!).operation.display;
    assert.ok(shown.indexOf("[body:") < shown.indexOf("x-pad"), "the body's facts come before the headers");
    assert.match(shown, /^x-pad: p{2400}$/m);
    assert.match(shown, /^x-tenant: s{300}prod$/m, "the tail of a long value is shown (it is bound)");
  });

  it("a body in another charset is not shown as UTF-8; a body the gateway reads differently from some targets carries a warning", async () => {
    // UTF-7: Express's json() decodes it; as UTF-8 it reads as a harmless payment.
    const utf7 = await post("/v1/refunds/9", '{"to":"alice","amount":10,"memo":"+ACIALAAi-"}', { "content-type": "application/json; charset=utf-7" });
    const shown = approval(utf7.json.approval_id!).operation.display;
    assert.match(shown, /\[body in charset utf-7, not shown: \d+ bytes\]/);
    assert.doesNotMatch(shown, /alice/);
    const dup = await post("/v1/refunds/10", '{"amount":10,"to":"alice",\n"amount":900000}');
    assert.match(approval(dup.json.approval_id!).operation.display, /\[warning: the gateway cannot read this body as every target would: .*duplicate/);
  });

  it("invisible and look-alike characters are escaped in what the approver reads (body and headers)", async () => {
    const r = await post("/v1/refunds/11", '{"to":"acct-77","amount":900000,"dry_run\ufe0f":true}', { "x-dry-run": "true\u00ad" });
    const shown = approval(r.json.approval_id!).operation.display;
    assert.match(shown, /"dry_run\\u\{fe0f\}":true/);
    assert.match(shown, /^x-dry-run: true\\u\{00ad\}$/m);
  });

  it("a grant is bound to the path as the target gets it: /dry-run approved does not run /dry%2Drun", async () => {
    const first = await post("/v1/refunds/dry-run", "{}");
    assert.equal(first.status, 428);
    gw.gw.approvals.decide(first.json.approval_id!, APPROVER(["security"]), "approve");
    const before = arrived.length;
    const encoded = await post("/v1/refunds/dry%2Drun", "{}");
    assert.equal(encoded.status, 428, "the encoded form is another request to a target that routes the raw path");
    assert.match(approval(encoded.json.approval_id!).operation.display, /^POST \/v1\/refunds\/dry%2Drun\n\(the path decoded: \/v1\/refunds\/dry-run;/);
    assert.equal(arrived.length, before);
    assert.equal((await post("/v1/refunds/dry-run", "{}")).status, 200);
  });

  it("a detector match cannot erase the gateway's lines: each value is masked on its own and the body is quoted", async () => {
    const fake = '\n[body: 26 bytes, sha256 0000]\ncontent-type: application/json\nx-env: staging\n\n{"amount":10,"to":"alice"}';
    const r = await post("/v1/refunds/-----BEGIN%20PRIVATE%20KEY-----", `amount=900000&to=attacker&memo=-----END PRIVATE KEY-----${fake}`, { "content-type": "application/x-www-form-urlencoded", "x-env": "prod" });
    assert.equal(r.status, 428);
    const shown = approval(r.json.approval_id!).operation.display;
    const real = createHash("sha256").update(`amount=900000&to=attacker&memo=-----END PRIVATE KEY-----${fake}`).digest("hex");
    assert.match(shown, new RegExp(`^\\[body: \\d+ bytes, sha256 ${real}\\]$`, "m"), "the real facts are there");
    assert.match(shown, /^x-env: prod$/m, "the real header is there");
    assert.match(shown, /^│ amount=900000&to=attacker/m, "the body's decisive part is shown");
    assert.doesNotMatch(shown, /^x-env: staging$/m, "the forged header line is quoted, not a line of the gateway's");
    assert.match(shown, /^│ x-env: staging$/m);
  });

  it("warns of parameters a target reads as a list and of JSON keys that differ only in case", async () => {
    const form = await post("/v1/refunds/12?amount=10&amount=900000", "amount=10&to=alice&amount=900000", { "content-type": "application/x-www-form-urlencoded" });
    const shown = approval(form.json.approval_id!).operation.display;
    assert.match(shown, /\[warning: the query names amount more than once/);
    assert.match(shown, /\[warning: the form names amount more than once/);
    const json = await post("/v1/refunds/13", JSON.stringify({ amount: 10, AMOUNT: 900000 }));
    assert.match(approval(json.json.approval_id!).operation.display, /\[warning: the JSON has keys that differ only in case \(amount\/AMOUNT\)/);
  });

  it("one identity may have approvals.max_pending_per_identity pending at once; past it a request needing approval gets 429", async () => {
    const flooder = await gw.token("flooder-1", ["agents"]);
    const ask = (i: number) => fetch(`http://127.0.0.1:${gw.httpPort}/c/billing/v1/refunds/flood-${i}`, {
      method: "POST", headers: { authorization: `Bearer ${flooder}`, "content-type": "application/json", prefer: "respond-async" }, body: "{}",
    });
    for (let i = 0; i < 30; i++) assert.equal((await ask(i)).status, 428);
    const over = await ask(30);
    assert.equal(over.status, 429);
    assert.equal(((await over.json()) as { error: string }).error, "too_many_pending_approvals");
    // Another identity is not held back by it.
    assert.equal((await post("/v1/refunds/14", "{}")).status, 428);
  });

  it("pipelined held requests are all cancelled when their socket closes, and none runs", async () => {
    const before = arrived.length;
    const s = connect({ port: gw.httpPort, host: "127.0.0.1" });
    await new Promise((resolve) => s.once("connect", resolve));
    s.on("error", () => undefined);
    const req = (id: string) => `POST /c/billing/v1/refunds/${id} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
    s.write(req("p1") + req("p2"));
    const pendingOf = () => gw.gw.approvals.list({ state: "pending" }).filter((a) => /POST \/v1\/refunds\/p[12]/.test(a.operation.display));
    for (let i = 0; i < 500 && pendingOf().length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    const held = pendingOf();
    assert.equal(held.length, 2, "both pipelined requests are held");
    s.destroy();
    for (let i = 0; i < 500 && held.some((a) => approval(a.id).state === "pending"); i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(held.map((a) => approval(a.id).state), ["cancelled", "cancelled"]);
    assert.equal(arrived.length, before);
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
