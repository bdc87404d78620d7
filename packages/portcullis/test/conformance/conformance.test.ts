/**
 * The conformance suite: the guarantees the core gives every session, checked once per protocol
 * driver (test/conformance/drivers.ts) with the same assertions, so protocols cannot drift apart:
 * deny, hold then approve, hold then the client leaves (the approval is cancelled, no grant spent),
 * revocation and token expiry ending a running operation, the recording caps, and the same session
 * record and metrics for every protocol. Real targets: PostgreSQL, and a stock Node HTTP server.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Principal } from "../../src/identity/principal.js";
import { type LocalHttpTarget, listenLocal } from "../support/http-target.js";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { within } from "../support/wait.js";
import { type ProtocolDriver, httpDriver, postgresDriver } from "./drivers.js";

const MAX_SESSION_BYTES = 3000;
const MAX_RESULT_BYTES = 4096;
const SECURITY: Principal = { sub: "sec-1", groups: ["security"], iss: "dev", exp: 0, run: {} };

/** The HTTP target: a word, items to change, an endless event stream, a large answer. */
function api(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://x");
  req.resume();
  if (url.pathname === "/events") {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const timer = setInterval(() => res.write(": still here\n\n"), 100);
    res.on("close", () => clearInterval(timer));
  } else if (url.pathname === "/large") {
    res.writeHead(200, { "content-type": "text/plain" }).end("x".repeat(Number(url.searchParams.get("bytes"))));
  } else if (url.pathname === "/word") {
    res.writeHead(200, { "content-type": "text/plain" }).end("conformance");
  } else {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ done: req.method }));
  }
}

describe("conformance: every protocol gets the same guarantees from the core", () => {
  let target: TestTarget;
  let http: LocalHttpTarget;
  let gw: TestGateway;
  const drivers: ProtocolDriver[] = [];
  let n = 0;
  /** A subject of its own for each test and driver, so records and approvals are told apart. */
  const subject = (d: ProtocolDriver, what: string) => `${what}-${d.protocol}-${++n}`;
  const sessionsOf = (sub: string) => gw.gw.store.listSessions({ sub });
  const endedSession = async (sub: string) => {
    await within(15_000, (async () => { while (!sessionsOf(sub).some((s) => s.endReason)) await new Promise((r) => setTimeout(r, 20)); })());
    return sessionsOf(sub).find((s) => s.endReason)!;
  };

  before(async () => {
    target = await startTarget();
    http = await listenLocal(api);
    gw = await startTestGateway({
      target,
      overrides: {
        connections: [
          { name: "app", type: "postgres", target: { host: target.pg.host, port: target.pg.port, database: "app", tls: "disable" }, credentials: { username: "app_user", password: "S3cr3t-upstream-pa55word-QX7" }, access: ["agents"] },
          { name: "api", type: "http", target: { url: http.url }, access: ["agents"] },
        ],
        rules: [
          { name: "no-deletes", when: { sql: { statements: ["delete"] } }, action: "deny" },
          { name: "no-http-deletes", connections: ["api"], when: { http: { methods: ["DELETE"] } }, action: "deny" },
          { name: "changes-need-a-yes", when: { sql: { statements: ["update"] } }, action: "approve", approvers: ["security"] },
          { name: "http-changes-need-a-yes", connections: ["api"], when: { http: { methods: ["PUT"] } }, action: "approve", approvers: ["security"] },
          { name: "reads", when: { sql: { statements: ["select"] } }, action: "allow" },
          { name: "http-reads", connections: ["api"], when: { http: { methods: ["GET"] } }, action: "allow" },
        ],
        // Masking on the HTTP connection: its answers are then read (and recorded) as text.
        masking: [{ connections: ["api"], detectors: ["email"], strategy: "redact" }],
        recording: { enabled: true, max_result_bytes: MAX_RESULT_BYTES, max_session_bytes: MAX_SESSION_BYTES },
      },
    });
    const direct = await connectDirect(target);
    await direct.query("create table conformance_items (id int primary key, n int)");
    await direct.query("insert into conformance_items values (1, 0)");
    await direct.end();
    drivers.push(postgresDriver(gw), httpDriver(gw, "api"));
  });
  after(async () => {
    await gw?.stop();
    http?.close();
    await target?.stop();
  });

  const each = (title: string, fn: (d: ProtocolDriver) => Promise<void>) => {
    for (const protocol of ["postgres", "http"] as const) it(`${protocol}: ${title}`, () => fn(drivers.find((d) => d.protocol === protocol)!));
  };

  each("an allowed operation is answered, and its session is recorded and counted like every protocol's", async (d) => {
    const sub = subject(d, "small");
    const before = await metric(gw, "portcullis_sessions_total", { protocol: d.protocol, connection: d.connection });
    const out = await d.small(await gw.token(sub));
    assert.equal(out.kind, "answered");
    assert.match(out.kind === "answered" ? out.text : "", /conformance/);
    const s = await endedSession(sub);
    assert.equal(s.protocol, d.protocol);
    assert.equal(s.connection, d.connection);
    assert.equal(s.stats?.operations, 1);
    assert.ok((s.stats?.bytes ?? 0) > 0, "the answer's bytes are counted");
    assert.equal(await metric(gw, "portcullis_sessions_total", { protocol: d.protocol, connection: d.connection }), before + 1);
    assert.equal(await metric(gw, "portcullis_sessions_active", { protocol: d.protocol, connection: d.connection }), 0);
    assert.ok(await metric(gw, "portcullis_bytes_total", { protocol: d.protocol, direction: "to_client" }) > 0);
  });

  each("a denied operation is refused, and audited as refused", async (d) => {
    const sub = subject(d, "deny");
    const out = await d.denied(await gw.token(sub));
    assert.equal(out.kind, "refused");
    const s = await endedSession(sub);
    assert.equal(s.stats?.denied, 1);
  });

  each("an operation held for approval runs once it is approved", async (d) => {
    const sub = subject(d, "hold");
    const running = d.held(await gw.token(sub));
    const approval = await pendingApproval(gw, sub);
    gw.gw.approvals.decide(approval, SECURITY, "approve");
    const out = await within(15_000, running.ended);
    assert.notEqual(out, "timed out");
    assert.equal(out !== "timed out" && out.kind, "answered");
  });

  each("a held operation whose client leaves is cancelled, and spends no grant", async (d) => {
    const sub = subject(d, "leave");
    const running = d.held(await gw.token(sub));
    const approval = await pendingApproval(gw, sub);
    running.leave();
    await within(15_000, (async () => { while (gw.gw.approvals.get(approval)?.state === "pending") await new Promise((r) => setTimeout(r, 20)); })());
    assert.equal(gw.gw.approvals.get(approval)?.state, "cancelled");
  });

  each("revoking the identity ends a running operation and its session", async (d) => {
    const sub = subject(d, "revoke");
    const running = await d.endless(await gw.token(sub));
    await new Promise((r) => setTimeout(r, 200));
    gw.gw.containment.revoke({ kind: "subject", value: sub, reason: "conformance", by: "responder" });
    const out = await within(15_000, running.ended);
    assert.notEqual(out, "timed out", "the operation was not ended");
    assert.match((await endedSession(sub)).endReason ?? "", /^revoked/);
  });

  each("the token's expiry ends a running operation and its session", async (d) => {
    const sub = subject(d, "expiry");
    const running = await d.endless(await gw.token(sub, ["agents"], 2));
    const out = await within(15_000, running.ended);
    assert.notEqual(out, "timed out", "the operation outlived its token");
    assert.equal((await endedSession(sub)).endReason, "token_expired");
  });

  each("a recording keeps no more of a session than recording.max_session_bytes", async (d) => {
    const sub = subject(d, "caps");
    const out = await d.large(await gw.token(sub), 10_000);
    assert.equal(out.kind, "answered");
    const s = await endedSession(sub);
    const events = gw.gw.store.readRecording(s.id).flatMap((c) => c.events.split("\n")).map((l) => JSON.parse(l) as { e: string; rows?: unknown[][]; truncated?: boolean; bytes?: number });
    const result = events.find((e) => e.e === "result")!;
    const kept = JSON.stringify(result.rows ?? []).length;
    assert.ok(kept <= MAX_SESSION_BYTES + 16, `the recording kept ${kept} bytes of a ${MAX_SESSION_BYTES}-byte session cap`);
    assert.equal(result.truncated, true);
    assert.ok((result.bytes ?? 0) >= 10_000, "the whole answer is counted");
  });
});

/** The id of the approval `sub` is waiting on, once it is asked. */
async function pendingApproval(gw: TestGateway, sub: string): Promise<string> {
  for (let i = 0; i < 750; i++) {
    const a = gw.gw.approvals.list({ state: "pending" }).find((x) => x.requester.sub === sub);
    if (a) return a.id;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no approval was asked for ${sub}`);
}

/** A metric's value for the given labels (0 when it has none). */
async function metric(gw: TestGateway, name: string, labels: Record<string, string>): Promise<number> {
  const m = gw.gw.context.metrics.registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const values = (await m.get()).values as { value: number; labels: Record<string, string | number> }[];
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}
