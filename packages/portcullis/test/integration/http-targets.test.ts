/**
 * HTTP targets end to end: real local HTTP servers (one plain, one over TLS with a test CA) behind
 * the gateway; agents call /c/<connection>/... with their token and fetch(). The API key never
 * reaches the agent (every byte it receives is searched), rules judge method and path, JSON and
 * text are masked (also gzip-compressed), approvals hold or defer (428), budgets answer 429, and a
 * revocation cuts a running download.
 */
import assert from "node:assert/strict";
import { type IncomingHttpHeaders, type Server, createServer, request as httpRequest } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { generate } from "selfsigned";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const API_KEY = "sk_live_Upstr3amApiKey_9f8e7d6c";
const CUSTOMERS = [
  { id: 1, name: "Ada", email: "ada.lovelace@example.com", ssn: "123-45-6789", plan: "gold" },
  { id: 2, name: "Grace", email: "grace.hopper@example.org", ssn: "234-56-7890", plan: "basic" },
];

describe("HTTP targets", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let upstream: Server;
  let secure: Server;
  let ca: string;
  const seen: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
  let downloads = 0;
  let releaseEvents: (() => void) | undefined;
  let idp: Server;
  const closeLater: Server[] = [];
  let mtlsUrl = "";
  let clientPems: { cert: string; key: string } = { cert: "", key: "" };
  let tokenRequests = 0;
  const ISSUED = "upstream-access-token-5b9c";

  const base = () => `http://127.0.0.1:${gw.httpPort}`;
  const call = async (path: string, init: RequestInit & { sub?: string; groups?: string[] } = {}) => {
    const token = await gw.token(init.sub ?? "agent-1", init.groups ?? ["agents"]);
    const res = await fetch(`${base()}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
    const raw = Buffer.from(await res.arrayBuffer());
    return { res, text: raw.toString("utf8"), raw, headers: [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join("\n") };
  };

  before(async () => {
    target = await startTarget();
    upstream = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        seen.push({ path: req.url ?? "", headers: req.headers, body });
        if (req.headers["x-api-key"] !== API_KEY) { res.writeHead(401).end("no key"); return; }
        const url = new URL(req.url ?? "/", "http://x");
        if (url.pathname === "/v1/customers") {
          const json = JSON.stringify({ customers: CUSTOMERS, key_echo: "none" });
          res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(json)) }).end(json);
        } else if (url.pathname === "/v1/customers.gz") {
          const gz = gzipSync(JSON.stringify({ customers: CUSTOMERS }));
          res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-encoding": "gzip", "content-length": String(gz.length) }).end(gz);
        } else if (url.pathname === "/v1/note") {
          res.writeHead(200, { "content-type": "text/plain" }).end(`call ${CUSTOMERS[0]!.email} tomorrow`);
        } else if (url.pathname === "/v1/download") {
          downloads++;
          res.writeHead(200, { "content-type": "application/octet-stream" });
          const chunk = Buffer.alloc(64 * 1024, 7);
          const timer = setInterval(() => res.write(chunk), 20);
          res.on("close", () => clearInterval(timer));
        } else if (url.pathname === "/v1/big") {
          // A ~200 MB JSON array, unsized (chunked), produced as fast as it is read.
          const total = Number(url.searchParams.get("mb") ?? "200") * 1024 * 1024;
          res.writeHead(200, { "content-type": "application/json" });
          let sent = 0;
          let i = 0;
          res.write('{"customers":[');
          const pump = () => {
            while (sent < total) {
              let chunk = "";
              for (let k = 0; k < 200; k++, i++) chunk += `${i ? "," : ""}{"id":${i},"email":"user${i}@example.com","ssn":"123-45-${String(1000 + (i % 9000))}","note":"${"x".repeat(120)}"}`;
              sent += chunk.length;
              if (!res.write(chunk)) return void res.once("drain", pump);
            }
            res.end("]}");
          };
          pump();
        } else if (url.pathname === "/v1/events") {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          res.write(`event: customer\ndata: {"email":"${CUSTOMERS[0]!.email}","ssn":"${CUSTOMERS[0]!.ssn}"}\n\n`);
          res.write(`data: plain text for ${CUSTOMERS[1]!.email}\n\n`);
          releaseEvents = () => res.end(`data: {"done":true,"contact":"${CUSTOMERS[1]!.email}"}\n\n`);
        } else if (url.pathname.startsWith("/v1/refunds/")) {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ refunded: url.pathname.split("/").pop(), body: JSON.parse(body || "{}") }));
        } else {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ path: url.pathname, query: url.search }));
        }
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const pems = await generate([{ name: "commonName", value: "localhost" }], {
      keyType: "ec", curve: "P-256", algorithm: "sha256",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }, { type: 2, value: "localhost" }] }],
    });
    ca = pems.cert;
    secure = createHttpsServer({ key: pems.private, cert: pems.cert }, (req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ secure: true, auth: req.headers.authorization ?? null, contact: "ops@example.com" }));
    });
    await new Promise<void>((r) => secure.listen(0, "127.0.0.1", r));
    // An upstream that wants the gateway's client certificate (mutual TLS).
    const client = await generate([{ name: "commonName", value: "portcullis-gateway" }], { keyType: "ec", curve: "P-256", algorithm: "sha256" });
    const mtls = createHttpsServer({ key: pems.private, cert: pems.cert, requestCert: true, rejectUnauthorized: true, ca: [client.cert] }, (req, res) => {
      const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ client: peer.subject?.CN ?? null }));
    });
    await new Promise<void>((r) => mtls.listen(0, "127.0.0.1", r));
    closeLater.push(mtls);
    mtlsUrl = `https://127.0.0.1:${(mtls.address() as { port: number }).port}`;
    clientPems = { cert: client.cert, key: client.private };
    idp = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        tokenRequests++;
        const ok = req.headers.authorization === `Basic ${Buffer.from("gw-client:gw-client-secret").toString("base64")}` && new URLSearchParams(body).get("grant_type") === "client_credentials";
        if (!ok) { res.writeHead(401).end("{}"); return; }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: ISSUED, token_type: "Bearer", expires_in: 3600 }));
      });
    });
    await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
    const oauthUpstream = createServer((req, res) => {
      res.writeHead(req.headers.authorization === `Bearer ${ISSUED}` ? 200 : 401, { "content-type": "application/json" }).end(JSON.stringify({ ok: req.headers.authorization === `Bearer ${ISSUED}` }));
    });
    await new Promise<void>((r) => oauthUpstream.listen(0, "127.0.0.1", r));
    closeLater.push(idp, oauthUpstream);
    const up = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    const tls = `https://127.0.0.1:${(secure.address() as { port: number }).port}`;
    gw = await startTestGateway({
      target,
      connections: [
        { name: "billing", type: "http", target: { url: up }, credentials: { headers: { "X-Api-Key": API_KEY } }, access: ["agents"] },
        { name: "vault", type: "http", target: { url: tls, ca }, credentials: { basic: { username: "gw", password: "basic-secret-pw" } }, access: ["agents"] },
        { name: "untrusted", type: "http", target: { url: tls }, access: ["agents"] },
        { name: "mtls", type: "http", target: { url: mtlsUrl, ca, cert: clientPems.cert, key: clientPems.key }, access: ["agents"] },
        { name: "mtls-nocert", type: "http", target: { url: mtlsUrl, ca }, access: ["agents"] },
        { name: "strict", type: "http", target: { url: up }, credentials: { headers: { "X-Api-Key": API_KEY }, query: { tenant: "t-1" } }, access: ["agents"], binary_responses: "refuse" },
        {
          name: "oauth", type: "http", target: { url: `http://127.0.0.1:${(oauthUpstream.address() as { port: number }).port}` },
          credentials: { oauth2: { token_url: `http://127.0.0.1:${(idp.address() as { port: number }).port}/token`, client_id: "gw-client", client_secret: "gw-client-secret" } },
          access: ["agents"],
        },
      ],
      overrides: {
        rules: [
          { name: "no-deletes", connections: ["billing"], when: { http: { methods: ["DELETE"], paths: ["/v1/**"] } }, action: "deny" },
          { name: "refunds", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/refunds/**"] } }, action: "approve", approvers: ["security"] },
        ],
        masking: [{ connections: ["billing", "vault", "strict"], keys: ["ssn"], detectors: ["email"], strategy: "redact" }],
        budgets: [{ name: "http-bytes", subjects: ["small-budget", "small-budget-2"], bytes_per_hour: 100 }],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    upstream?.closeAllConnections();
    upstream?.close();
    secure?.close();
    for (const s of closeLater) s.close();
  });

  it("injects the connection's key, strips the agent's token, and masks JSON by key and by detector", async () => {
    // The agent tries to bring its own key: the connection's credentials win.
    const r = await call("/c/billing/v1/customers?limit=2", { headers: { "x-portcullis-run-run-id": "run-9", "x-api-key": "attacker-chosen-key" } });
    assert.equal(r.res.status, 200);
    const body = JSON.parse(r.text) as { customers: { email: string; ssn: string; name: string }[] };
    assert.equal(body.customers[0]!.name, "Ada");
    assert.equal(body.customers[0]!.ssn, "[REDACTED:ssn]");
    assert.equal(body.customers[0]!.email, "[REDACTED:email]");
    assert.equal(r.res.headers.get("content-length"), String(r.raw.length), "Content-Length stays truthful");
    for (const secret of [API_KEY, ...CUSTOMERS.flatMap((c) => [c.email, c.ssn])]) {
      assert.ok(!r.text.includes(secret) && !r.headers.includes(secret), `${secret} reached the agent`);
    }
    const got = seen.at(-1)!;
    assert.equal(got.path, "/v1/customers?limit=2");
    assert.equal(got.headers["x-api-key"], API_KEY);
    assert.equal(got.headers.authorization, undefined, "the agent's token is not forwarded");
    assert.equal(got.headers["x-portcullis-run-run-id"], undefined, "run hints are stripped");
    assert.equal(got.headers["x-forwarded-for"], "127.0.0.1");
  });

  it("ends hop-by-hop headers at the gateway, adds query credentials, and refuses unmaskable bodies when told to", async () => {
    // fetch() will not send Connection or TE itself: a plain node:http request does.
    const token = await gw.token("agent-1", ["agents"]);
    const status = await new Promise<number>((resolve, reject) => {
      const r = httpRequest(`${base()}/c/strict/v1/echo?x=1`, {
        headers: { authorization: `Bearer ${token}`, connection: "x-hop", "x-hop": "secret-hop", "x-kept": "yes", te: "trailers" },
      }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode ?? 0)); });
      r.on("error", reject);
      r.end();
    });
    assert.equal(status, 200);
    const got = seen.at(-1)!;
    assert.equal(got.path, "/v1/echo?x=1&tenant=t-1");
    assert.equal(got.headers["x-hop"], undefined, "a header named in Connection is hop-by-hop");
    assert.equal(got.headers.te, undefined);
    assert.equal(got.headers["x-kept"], "yes");
    const bin = await call("/c/strict/v1/download");
    assert.equal(bin.res.status, 502);
  });

  it("decodes gzip, masks, and answers identity-encoded", async () => {
    const r = await call("/c/billing/v1/customers.gz", { headers: { "accept-encoding": "gzip" } });
    assert.equal(r.res.status, 200);
    assert.equal(r.res.headers.get("content-encoding"), null);
    assert.ok(!r.text.includes("ada.lovelace@example.com"));
    assert.match(r.text, /\[REDACTED:ssn\]/);
    assert.equal(r.res.headers.get("content-length"), String(r.raw.length));
  });

  it("masks a 200 MB streamed JSON body with flat gateway memory", async (t) => {
    const token = await gw.token("agent-1", ["agents"]);
    const res = await fetch(`${base()}/c/billing/v1/big?mb=200`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), null, "streamed: no length to promise");
    const mem = () => { const m = process.memoryUsage(); return m.heapUsed + m.external + m.arrayBuffers; };
    const baseline = mem();
    let peak = baseline;
    const sampler = setInterval(() => { peak = Math.max(peak, mem()); }, 20);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let bytes = 0;
    let tail = "";
    let masked = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.length;
        const text = tail + decoder.decode(value, { stream: true });
        assert.ok(!text.includes("@example.com") && !/123-45-\d{4}/.test(text), "an unmasked value left the gateway");
        masked += text.split("[REDACTED:email]").length - 1 - (tail.split("[REDACTED:email]").length - 1);
        tail = text.slice(-40);
      }
    } finally {
      clearInterval(sampler);
    }
    t.diagnostic(`streamed ${(bytes / 2 ** 20).toFixed(0)} MiB masked; test process memory (gateway, upstream and client together) peaked ${((peak - baseline) / 2 ** 20).toFixed(1)} MiB above its baseline`);
    assert.ok(bytes > 190 * 2 ** 20, `only ${bytes} bytes`);
    assert.ok(masked > 1_000_000, `${masked} emails masked`);
    assert.ok(peak - baseline < 150 * 2 ** 20, `memory grew ${(peak - baseline) / 2 ** 20} MiB: the body was buffered`);
  });

  it("masks server-sent events event by event, as they arrive", async () => {
    const token = await gw.token("agent-1", ["agents"]);
    const res = await fetch(`${base()}/c/billing/v1/events`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let got = "";
    while (!got.includes("plain text for")) got += decoder.decode((await reader.read()).value, { stream: true });
    // Two events arrived while the upstream is still open: masking did not wait for the end.
    assert.equal(got, 'event: customer\ndata: {"email":"[REDACTED:email]","ssn":"[REDACTED:ssn]"}\n\ndata: plain text for [REDACTED:email]\n\n');
    releaseEvents!();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += decoder.decode(value, { stream: true });
    }
    assert.ok(got.endsWith('data: {"done":true,"contact":"[REDACTED:email]"}\n\n'), got);
  });

  it("masks text bodies by detector", async () => {
    const r = await call("/c/billing/v1/note");
    assert.equal(r.text, "call [REDACTED:email] tomorrow");
  });

  it("judges method and path: a denied request never reaches the target", async () => {
    const before = seen.length;
    const r = await call("/c/billing/v1/customers/1", { method: "DELETE" });
    assert.equal(r.res.status, 403);
    assert.deepEqual(JSON.parse(r.text), { error: "denied", rule: "no-deletes" });
    assert.equal(seen.length, before);
    assert.equal((await call("/c/billing/v1/customers/1", { method: "GET" })).res.status, 200);
  });

  it("judges the path the target will act on: dot segments and percent-encoding cannot slip past a rule", async () => {
    const token = await gw.token("agent-1", ["agents"]);
    // fetch() would normalise these itself; an attacker's client does not.
    const raw = (method: string, path: string, headers: Record<string, string> = {}) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = httpRequest({ host: "127.0.0.1", port: gw.httpPort, method, path, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => { body += c.toString(); });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      r.on("error", reject);
      r.end();
    });
    const before = seen.length;
    for (const path of ["/c/billing/x/../v1/customers/1", "/c/billing/x/%2e%2e/v1/customers/1", "/c/billing/v1/./customers/1"]) {
      const r = await raw("DELETE", path);
      assert.equal(r.status, 403, path);
      assert.equal((JSON.parse(r.body) as { rule: string }).rule, "no-deletes", path);
    }
    const encoded = await raw("POST", "/c/billing/v1/%72efunds/9", { prefer: "respond-async" });
    assert.equal(encoded.status, 428, "an encoded letter does not hide /v1/refunds/** from its approval rule");
    for (const path of ["/c/billing/v1%2fcustomers", "/c/billing/v1/customers%5c..%5cadmin", "/c/billing/v1/%00", "/c/billing/v1/%zz"]) {
      assert.equal((await raw("GET", path)).status, 400, path);
    }
    // A path that looks like another host has an empty segment, which targets read differently: refused.
    assert.equal((await raw("GET", "/c/billing//evil.example/v1/x")).status, 400);
    assert.equal(seen.length, before, "none of these reached the target");
  });

  it("refuses bad tokens and connections the identity may not use", async () => {
    assert.equal((await fetch(`${base()}/c/billing/v1/customers`)).status, 401);
    assert.equal((await fetch(`${base()}/c/billing/v1/customers`, { headers: { authorization: "Bearer forged.token.x" } })).status, 401);
    assert.equal((await call("/c/billing/v1/customers", { groups: ["interns"] })).res.status, 403);
    assert.equal((await call("/c/nope/v1/customers")).res.status, 403);
  });

  it("defers an approval with 428 under Prefer: respond-async, then runs the approved retry once", async () => {
    const body = JSON.stringify({ amount: 120 });
    const post = () => call("/c/billing/v1/refunds/77", { method: "POST", body, headers: { "content-type": "application/json", prefer: "respond-async" } });
    const first = await post();
    assert.equal(first.res.status, 428);
    const { approval_id: id } = JSON.parse(first.text) as { approval_id: string };
    assert.ok(id);
    gw.gw.approvals.decide(id, { sub: "sec-1", groups: ["security"], iss: "dev", exp: 0, run: {} }, "approve");
    // The approval is for that body: a bigger refund on the same path is judged afresh.
    const bigger = await call("/c/billing/v1/refunds/77", { method: "POST", body: JSON.stringify({ amount: 99_999 }), headers: { "content-type": "application/json", prefer: "respond-async" } });
    assert.equal(bigger.res.status, 428);
    const second = await post();
    assert.equal(second.res.status, 200);
    assert.deepEqual(JSON.parse(second.text), { refunded: "77", body: { amount: 120 } });
    assert.equal((await post()).res.status, 428, "a second retry needs a new approval");
  });

  it("holds a request until approved, then forwards it", async () => {
    const pending = call("/c/billing/v1/refunds/88", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    let a;
    for (let i = 0; i < 500 && !a; i++) {
      a = gw.gw.approvals.list({ state: "pending" }).find((x) => x.operation.display.startsWith("POST /v1/refunds/88"));
      if (!a) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(a, "an approval is pending");
    gw.gw.approvals.decide(a.id, { sub: "sec-1", groups: ["security"], iss: "dev", exp: 0, run: {} }, "approve");
    const r = await pending;
    assert.equal(r.res.status, 200);
    assert.equal((JSON.parse(r.text) as { refunded: string }).refunded, "88");
  });

  it("answers 429 when a budget is spent, and cuts a stream that crosses it", async () => {
    const r = await call("/c/billing/v1/big?mb=1", { sub: "small-budget-2" }).catch(() => undefined);
    assert.equal(r, undefined, "an unsized body crossing the budget is cut off mid-stream");
    const sized = await call("/c/billing/v1/customers", { sub: "small-budget" });
    assert.equal(sized.res.status, 429);
    assert.equal((JSON.parse(sized.text) as { error: string }).error, "budget_exceeded");
  });

  it("verifies an upstream over TLS against the configured CA, and refuses one it cannot verify", async () => {
    const r = await call("/c/vault/anything");
    assert.equal(r.res.status, 200);
    const body = JSON.parse(r.text) as { secure: boolean; auth: string; contact: string };
    assert.equal(body.secure, true);
    assert.equal(body.auth, `Basic ${Buffer.from("gw:basic-secret-pw").toString("base64")}`);
    assert.equal(body.contact, "[REDACTED:email]");
    const bad = await call("/c/untrusted/anything");
    assert.equal(bad.res.status, 502);
    const mutual = await call("/c/mtls/whoami");
    assert.equal(mutual.res.status, 200);
    assert.deepEqual(JSON.parse(mutual.text), { client: "portcullis-gateway" }, "the gateway presented its client certificate");
    assert.equal((await call("/c/mtls-nocert/whoami")).res.status, 502, "without it the target refuses the gateway");
  });

  it("fetches an OAuth2 client-credentials token once, uses it, and never shows it to the agent", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call("/c/oauth/resource");
      assert.equal(r.res.status, 200);
      assert.deepEqual(JSON.parse(r.text), { ok: true });
      assert.ok(!r.text.includes(ISSUED) && !r.headers.includes(ISSUED) && !r.text.includes("gw-client-secret"));
    }
    assert.equal(tokenRequests, 1, "cached until it nears expiry");
  });

  it("ends the request (and lets go of the target) when the client leaves mid-response", async () => {
    const token = await gw.token("leaver", ["agents"]);
    for (const path of ["/c/billing/v1/download", "/c/billing/v1/big?mb=50"]) {
      const before = downloads;
      await new Promise<void>((resolve, reject) => {
        const sock = connect(gw.httpPort, "127.0.0.1", () => sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`));
        // Leave as soon as the response starts, without reading the rest.
        sock.once("data", () => { sock.pause(); sock.destroy(); resolve(); });
        sock.on("error", reject);
      });
      const until = Date.now() + 10_000;
      while (gw.gw.context.sessions.list().some((s) => s.principal.sub === "leaver") && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(gw.gw.context.sessions.list().filter((s) => s.principal.sub === "leaver").length, 0, `${path}: the session still runs after its client left`);
      if (path.includes("download")) assert.equal(downloads, before + 1);
    }
    gw.gw.journal.flush();
    assert.ok(gw.gw.store.listSessions({ sub: "leaver" }).every((s) => s.endReason === "client_closed"));
  });

  it("a revocation cuts a running download mid-stream", async () => {
    const token = await gw.token("downloader", ["agents"]);
    const res = await fetch(`${base()}/c/billing/v1/download`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 256 * 1024) received += (await reader.read()).value?.length ?? 0;
    gw.gw.containment.revoke({ kind: "subject", value: "downloader", reason: "test", by: "responder" });
    await assert.rejects(async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) throw new Error("the download ended normally");
        received += value.length;
      }
    });
    const again = await fetch(`${base()}/c/billing/v1/customers`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(again.status, 401);
    assert.equal(((await again.json()) as { error: string }).error, "revoked");
  });

  it("audits and records every request as a session", () => {
    gw.gw.journal.flush();
    const sessions = gw.gw.store.listSessions({ sub: "agent-1" }).filter((s) => s.protocol === "http");
    assert.ok(sessions.length >= 5);
    const hinted = sessions.find((s) => s.runHints.run_id === "run-9");
    assert.ok(hinted, "run hints recorded");
    const decisions = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "decision").map((r) => JSON.parse(r.data) as { type: string; statement: string; action: string });
    assert.ok(decisions.some((d) => d.type === "http" && d.statement === "DELETE /v1/customers/1" && d.action === "deny"));
  });
});
