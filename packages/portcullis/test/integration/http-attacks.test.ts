/**
 * HTTP rules against a real Express app (express 5, default settings, `express.json()`) as the
 * target behind the gateway. Every request the app receives is recorded by the app itself, before
 * routing: that record is the witness that a denied route never ran. Attacks: case variants of a
 * denied path, the collection path without a trailing part, bodies Express decodes but a naive
 * gateway cannot (BOM, UTF-16, gzip, deflate, br, JSON under text/plain to a route whose parser
 * takes any type), string and exponent amounts against a numeric rule, duplicate keys, HEAD for a
 * denied GET, path forms targets disagree about, MCP tool calls in bodies only the target can read,
 * and an oversized body (413, not a reset).
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import express from "express";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { type LocalHttpTarget, listenLocal } from "../support/http-target.js";

interface Received { method: string; url: string; body: unknown; headers?: string[] }

describe("HTTP attacks against an Express target", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let server: LocalHttpTarget;
  /** Every request that reached the app (recorded before any route), and every refund or payout that ran. */
  const arrived: Received[] = [];
  const ran: Received[] = [];
  let token = "";

  before(async () => {
    const app = express();
    app.use((req, _res, next) => { arrived.push({ method: req.method, url: req.url, body: undefined }); next(); });
    const record = (req: express.Request, res: express.Response) => {
      ran.push({ method: req.method, url: req.originalUrl, body: req.body as unknown, headers: Object.keys(req.headers).filter((h) => h.startsWith("x-")) });
      res.json({ ran: true });
    };
    // A route whose parser takes any content type as JSON (Express's json({ type })).
    app.post("/v2/payouts", express.json({ type: () => true }), record);
    app.use(express.json());
    app.post("/v1/refunds", record);
    app.post("/v1/refunds/:id", record);
    app.post("/v1/payouts", record);
    app.get("/v1/secrets/:id", record);
    // Every method reaches the JSON-RPC handler, as with app.all or app.use.
    app.all("/mcp", record);
    app.post("/v1/ops", record);
    server = await listenLocal(app);
    target = await startTarget();
    gw = await startTestGateway({
      target,
      connections: [
        { name: "billing", type: "http", target: { url: server.url }, access: ["agents"], max_request_body: "64KB" },
        { name: "tools", type: "http", mcp: true, target: { url: server.url }, access: ["agents"] },
      ],
      overrides: {
        rules: [
          { name: "no-refunds", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/refunds/**"] } }, action: "deny" },
          { name: "no-secrets", connections: ["billing"], when: { http: { methods: ["GET"], paths: ["/v1/secrets/**"] } }, action: "deny" },
          { name: "no-delete-tools", connections: ["tools"], when: { mcp: { tools: ["delete_*"] } }, action: "deny" },
          { name: "dry-run-ok", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/ops"], headers: { "x-dry-run": "true" } } }, action: "allow" },
          { name: "no-ops", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/ops"] } }, action: "deny" },
          { name: "big-payouts", connections: ["billing"], when: { http: { methods: ["POST"], paths: ["/v1/payouts", "/v2/payouts"], body_json: { "$.amount": { gt: 100 } } } }, action: "deny" },
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

  const url = (path: string) => (path.startsWith("/c/") ? `http://127.0.0.1:${gw.httpPort}${path}` : `http://127.0.0.1:${gw.httpPort}/c/billing${path}`);
  const send = async (method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${token}`, ...headers } };
    if (body !== undefined) init.body = typeof body === "string" ? body : new Uint8Array(body);
    const res = await fetch(url(path), init);
    const text = await res.text();
    return { status: res.status, text, error: res.headers.get("content-type")?.includes("json") && text ? (JSON.parse(text) as { error?: string }).error : undefined };
  };
  const json = { "content-type": "application/json" };
  const payoutsOver100 = () => ran.filter((r) => /payouts/i.test(r.url) && Number((r.body as { amount?: unknown } | undefined)?.amount) > 100);

  it("lets an allowed request through (the witness works), without headers that reroute it", async () => {
    const reroute = { "x-original-url": "/v1/refunds/9", "x-http-method-override": "DELETE", "x-kept": "1" };
    const r = await send("POST", "/v1/payouts", JSON.stringify({ amount: 50 }), { ...json, ...reroute });
    assert.equal(r.status, 200, r.text);
    const got = ran.at(-1)!;
    assert.deepEqual({ ...got, headers: got.headers?.filter((h) => h !== "x-forwarded-for" && h !== "x-forwarded-proto" && h !== "x-forwarded-host") },
      { method: "POST", url: "/v1/payouts", body: { amount: 50 }, headers: ["x-kept"] });
  });

  it("case variants and the bare collection path do not reach a denied route", async () => {
    const before = arrived.length;
    for (const path of ["/V1/REFUNDS/9", "/v1/Refunds/9", "/V1/refunds/9/", "/v1/refunds", "/v1/refunds/", "/V1/REFUNDS"]) {
      const r = await send("POST", path, JSON.stringify({ amount: 1 }), json);
      assert.equal(r.status, 403, `${path}: ${r.text}`);
      assert.equal(r.error, "denied", path);
    }
    assert.equal(arrived.length, before, "Express received none of them");
    assert.equal(ran.filter((r) => /refunds/i.test(r.url)).length, 0, "no refund ran");
  });

  it("HEAD does not run a denied GET route (Express serves HEAD with the GET handler)", async () => {
    const before = arrived.length;
    assert.equal((await send("HEAD", "/v1/secrets/1")).status, 403);
    assert.equal((await send("GET", "/V1/Secrets/1")).status, 403);
    assert.equal(arrived.length, before);
  });

  it("bodies Express decodes but the rules could not read are refused (undecidable_body)", async () => {
    const doc = JSON.stringify({ amount: 5000 });
    const before = arrived.length;
    const cases: [string, Buffer | string, Record<string, string>][] = [
      ["BOM", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc)]), json],
      ["UTF-16LE", Buffer.from(doc, "utf16le"), { "content-type": "application/json; charset=utf-16le" }],
      ["UTF-16 with BOM", Buffer.from(`\ufeff${doc}`, "utf16le"), { "content-type": "application/json; charset=utf-16" }],
      ["gzip", gzipSync(doc), { ...json, "content-encoding": "gzip" }],
      ["deflate", deflateSync(doc), { ...json, "content-encoding": "deflate" }],
      ["br", brotliCompressSync(doc), { ...json, "content-encoding": "br" }],
      ["duplicate keys", '{"amount":5000,"amount":5000}', json],
      ["escaped duplicate key", '{"amount":5000,"amo\\u0075nt":5000}', json],
      ["hex string", JSON.stringify({ amount: "0x1388" }), json],
      ["array", JSON.stringify({ amount: [5000] }), json],
    ];
    for (const [what, body, headers] of cases) {
      const r = await send("POST", "/v1/payouts", body, headers);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.error, "undecidable_body", what);
    }
    assert.equal(arrived.length, before, "Express received none of them");
    assert.deepEqual(payoutsOver100(), []);
  });

  it("JSON under another content type is judged as JSON when the route's parser takes any type", async () => {
    const before = arrived.length;
    const types: Record<string, string>[] = [{ "content-type": "text/plain" }, { "content-type": "application/x-www-form-urlencoded" }, {}];
    for (const headers of types) {
      const r = await send("POST", "/v2/payouts", JSON.stringify({ amount: 5000 }), headers);
      assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.text}`);
    }
    assert.equal((await send("POST", "/v2/payouts", "amount=5000", { "content-type": "application/x-www-form-urlencoded" })).error, "undecidable_body");
    assert.equal(arrived.length, before);
    assert.deepEqual(payoutsOver100(), []);
  });

  it("string, exponent and huge amounts are compared as the numbers Express's code would see", async () => {
    const before = arrived.length;
    for (const amount of ['"5000"', '"5e3"', "5e3", "1E3", '"+101"', "1e400", "100.5", '"100.0000001"']) {
      const r = await send("POST", "/v1/payouts", `{"amount":${amount}}`, json);
      assert.equal(r.status, 403, `${amount}: ${r.text}`);
    }
    assert.equal(arrived.length, before);
    assert.deepEqual(payoutsOver100(), []);
    for (const amount of ['"100"', "-0", "1e2", '"99.5"']) {
      assert.equal((await send("POST", "/v1/payouts", `{"amount":${amount}}`, json)).status, 200, amount);
    }
  });

  it("path forms targets read differently are refused, never forwarded", async () => {
    const before = arrived.length;
    for (const path of ["/v1/refunds;x=1/9", "/v1//refunds/9", "/v1/refunds./9", "/v1/refunds%20/9", "/v1/%EF%BD%92%EF%BD%85%EF%BD%86%EF%BD%95%EF%BD%8E%EF%BD%84%EF%BD%93/9", "/v1/re%E2%80%8Bfunds/9"]) {
      const r = await send("POST", path, "{}", json);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.equal(r.error, "bad_request", path);
    }
    assert.equal(arrived.length, before);
  });

  it("an MCP tool call the gateway cannot read is refused when tool rules apply", async () => {
    const call = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "delete_everything", arguments: {} } });
    const before = arrived.length;
    assert.equal((await send("POST", "/c/tools/mcp", call, json)).status, 200, "a readable denied call is answered in JSON-RPC");
    for (const [what, body, headers] of [
      ["gzip", gzipSync(call), { ...json, "content-encoding": "gzip" }],
      ["BOM", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(call)]), json],
      ["UTF-16", Buffer.from(call, "utf16le"), { "content-type": "application/json; charset=utf-16le" }],
    ] as const) {
      const r = await send("POST", "/c/tools/mcp", body, headers);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.error, "undecidable_body", what);
    }
    assert.equal(arrived.length, before, "Express received none of them");
    assert.equal(ran.filter((r) => r.url === "/mcp").length, 0);
  });

  it("a tool call is judged in every message of a batch, whatever its jsonrpc member or method case says", async () => {
    const call = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "delete_all", arguments: {} } };
    const before = ran.filter((r) => r.url === "/mcp").length;
    for (const [what, body] of [
      // Each message of a batch is handled on its own (JSON-RPC 2.0 §6): a malformed neighbour hides nothing.
      ["a batch with an invalid element", [call, {}]],
      ["a batch with a scalar element", [1, call]],
      ["no jsonrpc member", { id: 1, method: "tools/call", params: { name: "delete_all" } }],
      ["another version", { ...call, jsonrpc: "1.0" }],
      ["the method in upper case", { ...call, method: "TOOLS/CALL" }],
    ] as const) {
      const r = await send("POST", "/c/tools/mcp", JSON.stringify(body), json);
      assert.equal(r.status, 200, `${what}: ${r.text}`);
      assert.match(r.text, /denied by rule no-delete-tools/, what);
    }
    // Methods other than POST carry the same body to a target that routes them all to its handler.
    for (const method of ["PUT", "PATCH", "DELETE"]) {
      const r = await send(method, "/c/tools/mcp", JSON.stringify(call), json);
      assert.match(r.text, /denied by rule no-delete-tools/, method);
    }
    // Calls that do not name their tool as a string: which tool a target runs is its own guess.
    for (const [what, body] of [
      ["the name as an array", { ...call, params: { name: ["delete_all"] } }],
      ["positional params", { ...call, params: ["delete_all", {}] }],
      ["the name inherited through __proto__", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"__proto__":{"name":"delete_all"}}}'],
      ["a batch nested in a batch", [[call]]],
    ] as const) {
      const r = await send("POST", "/c/tools/mcp", typeof body === "string" ? body : JSON.stringify(body), json);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.error, "undecidable_body", what);
    }
    assert.equal(ran.filter((r) => r.url === "/mcp").length, before, "a hidden call reached the target");
  });

  it("a header a rule matched on is judged as the target gets it: one named in Connection is dropped before the rules", async () => {
    const before = ran.filter((r) => r.url === "/v1/ops").length;
    const control = await send("POST", "/v1/ops", "{}", { ...json, "x-dry-run": "true" });
    assert.equal(control.status, 200, control.text);
    assert.ok(ran.at(-1)?.headers?.includes("x-dry-run"), "the target saw the header the allow rule matched");
    // The gateway drops hop-by-hop headers the agent names in Connection: the target would run the real
    // operation. (fetch will not send a Connection header: a raw request.)
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(gw.httpPort, "127.0.0.1");
      let got = "";
      sock.on("data", (c: Buffer) => { got += c.toString("latin1"); });
      sock.on("error", reject);
      sock.on("close", () => resolve(got));
      sock.end(`POST /c/billing/v1/ops HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nX-Dry-Run: true\r\nConnection: close, x-dry-run\r\nContent-Length: 2\r\n\r\n{}`);
    });
    assert.match(answer, /^HTTP\/1\.1 403 /, answer);
    assert.match(answer, /no-ops/);
    assert.equal(ran.filter((x) => x.url === "/v1/ops").length, before + 1, "only the control reached the target");
  });

  it("an oversized body gets 413 with a JSON error, not a reset", async () => {
    const big = JSON.stringify({ amount: 1, pad: "x".repeat(200 * 1024) });
    const r = await send("POST", "/v1/payouts", big, json);
    assert.equal(r.status, 413);
    assert.equal(r.error, "too_large");
    // A raw client that streams the body without a length (chunked) and reads the answer.
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(gw.httpPort, "127.0.0.1");
      let got = "";
      sock.on("data", (c: Buffer) => {
        got += c.toString("latin1");
        if (/\r\n\r\n[\s\S]*\}$/.test(got)) { sock.destroy(); resolve(got); }
      });
      sock.on("error", (err) => reject(new Error(`${(err as NodeJS.ErrnoException).code ?? err.message} after ${JSON.stringify(got.slice(0, 80))}`)));
      sock.on("close", () => resolve(got));
      sock.write(`POST /c/billing/v1/payouts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const chunk = "x".repeat(16 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 40 && !sock.destroyed) {
          sent++;
          if (!sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)) return void sock.once("drain", pump);
        }
        if (!sock.destroyed) sock.write("0\r\n\r\n");
      };
      pump();
    });
    assert.match(raw, /^HTTP\/1\.1 413 /);
    assert.match(raw, /"error":"too_large"/);
    assert.deepEqual(payoutsOver100(), []);
  });
});
