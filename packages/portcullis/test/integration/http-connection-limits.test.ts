/**
 * Attack tests: the HTTP listener (HTTP targets, admin API, approvals, metrics) is under the same
 * connection limits as the PostgreSQL one. Raw sockets that connect and never finish a request's
 * headers must not take the descriptors: past the per-source cap they are answered 503 before any
 * byte is parsed, and each is closed at authentication_timeout, while another source is served.
 */
import assert from "node:assert/strict";
import { type Socket, connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { sampleValue } from "../support/metrics.js";

const LIMITS = { authentication_timeout: "1500ms", max_unauthenticated_per_source: 6, max_unauthenticated: 40, max_connections: 100 };

function connectFrom(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", localAddress }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything the peer sends until it closes the connection. */
function untilClosed(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on("data", (c) => chunks.push(c));
    s.on("error", () => undefined);
    s.once("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
  });
}

/** One GET over a fresh raw connection from `localAddress`; the whole response text. */
async function rawGet(port: number, localAddress: string, path: string): Promise<string> {
  const s = await connectFrom(port, localAddress);
  const closed = untilClosed(s);
  s.write(`GET ${path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n`);
  return closed;
}

async function metricValue(port: number, name: string, labels: Record<string, string>): Promise<number> {
  return sampleValue(await rawGet(port, "127.0.0.3", "/metrics"), name, labels);
}

describe("HTTP listener connection limits", () => {
  let target: TestTarget;
  let gw: TestGateway;
  const hits = (limit: string) => metricValue(gw.httpPort, "portcullis_connection_limit_hits_total", { protocol: "http", limit });

  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target, gateway: LIMITS });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  it("stalled connections past the per-source cap get 503 unparsed; another source is served; the stalled ones close at the deadline", async () => {
    const before = await hits("max_unauthenticated_per_source");
    const timeoutsBefore = await hits("authentication_timeout");
    // Half of a request: the slow-headers client. The others send nothing at all.
    const stalled = await Promise.all(Array.from({ length: LIMITS.max_unauthenticated_per_source }, () => connectFrom(gw.httpPort, "127.0.0.1")));
    stalled[0]!.write("GET /healthz HTTP/1.1\r\nHost: gate");
    const closedByGateway = stalled.map(untilClosed);
    // Past the cap: answered at once, and the request it carries is not routed.
    const over = await rawGet(gw.httpPort, "127.0.0.1", "/healthz");
    assert.match(over, /^HTTP\/1\.1 503 /);
    assert.match(over, /too_many_connections/);
    assert.doesNotMatch(over, /"status":"ok"/);
    assert.equal(await hits("max_unauthenticated_per_source"), before + 1);
    assert.ok(gw.logs.some((l) => l.includes("http connection limit reached") && l.includes("max_unauthenticated_per_source")));
    // Another source is not held back.
    assert.match(await rawGet(gw.httpPort, "127.0.0.2", "/healthz"), /^HTTP\/1\.1 200 [\s\S]*"status":"ok"/);
    // The deadline closes every stalled connection; the test closes none.
    const answers = await Promise.all(closedByGateway);
    assert.ok(answers.every((a) => !a.includes("200 OK")), "a stalled request was answered as if complete");
    assert.equal(await hits("authentication_timeout"), timeoutsBefore + LIMITS.max_unauthenticated_per_source);
    // The source is served again.
    assert.match(await rawGet(gw.httpPort, "127.0.0.1", "/healthz"), /^HTTP\/1\.1 200 /);
  });

  it("a connection that has sent a request is no longer counted as unauthenticated (keep-alive is not capped by the per-source limit)", async () => {
    const kept: Socket[] = [];
    try {
      for (let i = 0; i < LIMITS.max_unauthenticated_per_source + 3; i++) {
        const s = await connectFrom(gw.httpPort, "127.0.0.1");
        kept.push(s);
        const first = new Promise<string>((resolve) => s.once("data", (c) => resolve(c.toString("latin1"))));
        s.write("GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n");
        assert.match(await first, /^HTTP\/1\.1 200 /, `keep-alive connection ${i}`);
      }
      assert.equal(await metricValue(gw.httpPort, "portcullis_connections_open", { protocol: "http", state: "unauthenticated" }), 0);
      assert.ok(await metricValue(gw.httpPort, "portcullis_connections_open", { protocol: "http", state: "authenticated" }) >= kept.length);
    } finally {
      for (const s of kept) s.destroy();
    }
  });
});
