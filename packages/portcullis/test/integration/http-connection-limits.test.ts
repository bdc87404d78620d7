/**
 * Attack tests: the HTTP listener (HTTP targets, admin API, approvals, metrics) is under the same
 * connection limits as the PostgreSQL one. Raw sockets that connect and never finish a request's
 * headers must not take the descriptors: past the per-source cap they are answered 503 before any
 * byte is parsed, and each is closed at authentication_timeout, while another source is served.
 */
import assert from "node:assert/strict";
import { type Socket, connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { within } from "../support/wait.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { type LocalHttpTarget, listenLocal } from "../support/http-target.js";
import { METRICS_TOKEN, sampleValue } from "../support/metrics.js";

const LIMITS = { authentication_timeout: "1500ms", request_timeout: "2500ms", max_unauthenticated_per_source: 6, max_unauthenticated: 40, max_connections: 100 };

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
async function rawGet(port: number, localAddress: string, path: string, headers = ""): Promise<string> {
  const s = await connectFrom(port, localAddress);
  const closed = untilClosed(s);
  s.write(`GET ${path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n${headers}\r\n`);
  return closed;
}

/** The next whole response (headers and a Content-Length body) on a keep-alive socket. */
function nextResponse(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (c: Buffer) => {
      text += c.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length < end + 4 + length) return;
      s.off("data", onData).off("close", onClose);
      resolve(text);
    };
    const onClose = () => reject(new Error(`closed before a whole response: ${text}`));
    s.on("data", onData).once("close", onClose);
  });
}

const SCRAPE = `Authorization: Bearer ${METRICS_TOKEN}\r\n`;

async function metricValue(port: number, name: string, labels: Record<string, string>): Promise<number> {
  return sampleValue(await rawGet(port, "127.0.0.3", "/metrics", SCRAPE), name, labels);
}

describe("HTTP listener connection limits", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let web: LocalHttpTarget;
  const hits = (limit: string) => metricValue(gw.httpPort, "portcullis_connection_limit_hits_total", { protocol: "http", limit });

  before(async () => {
    target = await startTarget();
    // An HTTP target with an 8 MB answer (trickled request bodies never get this far).
    web = await listenLocal((_req, res) => { res.writeHead(200, { "content-type": "application/octet-stream" }); res.end(Buffer.alloc(8 * 1024 * 1024, 7)); });
    gw = await startTestGateway({
      target,
      gateway: LIMITS,
      connections: [{ name: "web", type: "http", target: { url: web.url }, access: ["agents"] }],
    });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
    web?.close();
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

  it("a connection whose request authenticated is no longer counted as unauthenticated (keep-alive is not capped by the per-source limit)", async () => {
    const kept: Socket[] = [];
    try {
      for (let i = 0; i < LIMITS.max_unauthenticated_per_source + 3; i++) {
        const s = await connectFrom(gw.httpPort, "127.0.0.1");
        kept.push(s);
        const first = nextResponse(s);
        s.write(`GET /metrics HTTP/1.1\r\nHost: gateway\r\n${SCRAPE}\r\n`);
        assert.match(await first, /^HTTP\/1\.1 200 /, `keep-alive connection ${i}`);
      }
      assert.equal(await metricValue(gw.httpPort, "portcullis_connections_open", { protocol: "http", state: "unauthenticated" }), 0);
      assert.ok(await metricValue(gw.httpPort, "portcullis_connections_open", { protocol: "http", state: "authenticated" }) >= kept.length);
    } finally {
      for (const s of kept) s.destroy();
    }
  });

  it("a request without a token, or with a bad one, does not authenticate its connection: answered with Connection: close and closed", async () => {
    for (let i = 0; i < 4; i++) {
      const s = await connectFrom(gw.httpPort, "127.0.0.4");
      const closed = untilClosed(s);
      const answer = nextResponse(s);
      const auth = i % 2 ? "Authorization: Bearer not-a-token\r\n" : "";
      s.write(`GET ${i < 2 ? "/api/revocations" : "/c/web/x"} HTTP/1.1\r\nHost: gateway\r\n${auth}\r\n`);
      assert.match(await answer, /^HTTP\/1\.1 401 [\s\S]*\r\nConnection: close\r\n/i, `request ${i}`);
      assert.notEqual(await within(5_000, closed), "timed out", `connection ${i} was closed after its answer`);
    }
    // Pipelined behind an authenticated request, a tokenless one still ends the connection.
    const s = await connectFrom(gw.httpPort, "127.0.0.4");
    const closed = untilClosed(s);
    s.write(`GET /metrics HTTP/1.1\r\nHost: gateway\r\n${SCRAPE}\r\nGET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n`);
    const all = await within(5_000, closed);
    assert.notEqual(all, "timed out", "the pipelined tokenless request ended the connection");
    assert.equal((all as string).match(/^HTTP\/1\.1 200 /gm)?.length, 2, "the authenticated request and the first tokenless one are answered, then the connection ends");
    assert.equal(await metricValue(gw.httpPort, "portcullis_connections_open", { protocol: "http", state: "unauthenticated" }), 0);
  });

  it("a tokenless request that trickles its body is closed at the deadline", async () => {
    const s = await connectFrom(gw.httpPort, "127.0.0.5");
    const closed = untilClosed(s);
    s.write("POST /api/revocations HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{");
    const drip = setInterval(() => s.write(" "), 100);
    try {
      assert.equal(await within(10_000, closed.then(() => "closed")), "closed", "the gateway closed it");
    } finally {
      clearInterval(drip);
      s.destroy();
    }
  });

  it("a token holder that trickles its body is answered 408 at request_timeout and closed", async () => {
    const timeouts = await hits("request_timeout");
    const s = await connectFrom(gw.httpPort, "127.0.0.5");
    const closed = untilClosed(s);
    const token = await gw.token("agent-1", ["agents"]);
    s.write(`POST /c/web/upload HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nx`);
    const drip = setInterval(() => s.write("x"), 100);
    try {
      assert.match(await within(15_000, closed), /^HTTP\/1\.1 408 [\s\S]*request_timeout/);
    } finally {
      clearInterval(drip);
      s.destroy();
    }
    assert.equal(await hits("request_timeout"), timeouts + 1);
  });

  it("request_timeout runs until the request has arrived, also when it was answered early (413) or its headers come later on a kept connection", async () => {
    const token = await gw.token("agent-1", ["agents"]);
    // Answered 413 at once (Content-Length over max_request_body), then the body trickles on.
    const early = await connectFrom(gw.httpPort, "127.0.0.8");
    const earlyClosed = untilClosed(early);
    early.write(`POST /c/web/upload HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\nContent-Length: 50000000\r\n\r\nx`);
    // Authenticated by its first request; the second request's headers trickle.
    const kept = await connectFrom(gw.httpPort, "127.0.0.8");
    const keptClosed = untilClosed(kept);
    const first = nextResponse(kept);
    kept.write(`GET /metrics HTTP/1.1\r\nHost: gateway\r\n${SCRAPE}\r\n`);
    assert.match(await first, /^HTTP\/1\.1 200 /);
    kept.write("GET /healthz HTTP/1.1\r\nHost: ga");
    const drip = setInterval(() => { early.write("x"); kept.write("x"); }, 100);
    try {
      assert.match(await within(15_000, earlyClosed), /^HTTP\/1\.1 413 /, "answered 413, then closed");
      assert.notEqual(await within(15_000, keptClosed), "timed out", "the trickled headers were cut off");
    } finally {
      clearInterval(drip);
      early.destroy();
      kept.destroy();
    }
  });

  it("a client that never reads its answer is closed after request_timeout: it cannot hold the connection, session and target for ever", async () => {
    const s = await connectFrom(gw.httpPort, "127.0.0.9");
    s.pause();
    s.write(`GET /c/web/big HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${await gw.token("agent-1", ["agents"])}\r\n\r\n`);
    // Read nothing for well past request_timeout, then read what is left: the gateway has cut the answer off.
    await new Promise((r) => setTimeout(r, 8_000));
    const rest = untilClosed(s);
    s.resume();
    const received = await within(15_000, rest);
    assert.notEqual(received, "timed out", "the connection was closed");
    assert.ok((received as string).length < 8 * 1024 * 1024, `the answer was cut off (${(received as string).length} bytes)`);
  });

  it("a later keep-alive request without a token ends the connection it came on", async () => {
    const s = await connectFrom(gw.httpPort, "127.0.0.6");
    const closed = untilClosed(s);
    const first = nextResponse(s);
    s.write(`GET /metrics HTTP/1.1\r\nHost: gateway\r\n${SCRAPE}\r\n`);
    assert.match(await first, /^HTTP\/1\.1 200 /);
    const second = nextResponse(s);
    s.write("GET /api/revocations HTTP/1.1\r\nHost: gateway\r\n\r\n");
    assert.match(await second, /^HTTP\/1\.1 401 [\s\S]*\r\nConnection: close\r\n/i);
    assert.equal(await within(5_000, closed.then(() => "closed")), "closed", "the gateway closed the connection after the unauthenticated request");
  });

  it("/metrics answers only the scrape token or an admin", async () => {
    const status = async (auth: string) => Number(/^HTTP\/1\.1 (\d+)/.exec(await rawGet(gw.httpPort, "127.0.0.7", "/metrics", auth))![1]);
    assert.equal(await status(""), 401);
    assert.equal(await status("Authorization: Bearer test-scrape-token-012345678X\r\n"), 401);
    assert.equal(await status(`Authorization: Bearer ${await gw.token("agent-1", ["agents"])}\r\n`), 403);
    assert.equal(await status(`Authorization: Bearer ${await gw.token("sec-1", ["security"])}\r\n`), 200);
    assert.equal(await status(SCRAPE), 200);
    const body = await rawGet(gw.httpPort, "127.0.0.7", "/metrics");
    assert.doesNotMatch(body, /portcullis_/, "no metric in a refusal");
  });
});
