/**
 * HTTP and MCP conditions of the policy engine: methods, path globs, headers, JSON body fields and
 * their operators, tool names; the body reader and the path canonicaliser that feed them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import type { Operation } from "../../src/policy/decision.js";
import { PolicyEngine } from "../../src/policy/engine.js";
import { LooseNumber } from "../../src/policy/http.js";
import { readJsonBody } from "../../src/protocols/http/json-body.js";
import { targetPath } from "../../src/protocols/http/target-path.js";

const rules = parseConfig({
  gateway: { http: "127.0.0.1:0" },
  identity: { dev_issuer: true },
  rules: [
    { name: "big-refunds", when: { http: { methods: ["post"], paths: ["/v1/refunds/**"], body_json: { "$.refund.amount": 5000, "currency": "EUR" } } }, action: "approve", approvers: ["security"] },
    { name: "no-admin", when: { http: { paths: ["/admin/**"] } }, action: "deny" },
    { name: "internal-only", when: { http: { headers: { "X-Client": "batch-*" } } }, action: "deny" },
    { name: "no-delete-tools", when: { mcp: { tools: ["delete_*", "drop_*"] } }, action: "deny" },
    { name: "send-needs-ok", when: { mcp: { tools: ["send_email"] } }, action: "approve", approvers: ["security"] },
  ],
}, "/x/p.yaml").rules;

const engine = new PolicyEngine(rules);
const who = { sub: "a", groups: ["agents"], iss: "dev", exp: 0, run: {} };
const http = (o: Partial<Extract<Operation, { type: "http" }>>): Operation => ({ type: "http", method: "GET", path: "/", headers: {}, ...o });
const decide = (op: Operation) => {
  const d = engine.decide(who, "api", op);
  return [d.action, d.rule ?? null];
};

describe("http and mcp rules", () => {
  it("matches methods (any case), ** across segments, and JSON body fields by equality", () => {
    const body = { refund: { amount: 5000 }, currency: "EUR" };
    assert.deepEqual(decide(http({ method: "POST", path: "/v1/refunds/2024/77", body })), ["approve", "big-refunds"]);
    assert.deepEqual(decide(http({ method: "POST", path: "/v1/refunds/77", body: { ...body, currency: "USD" } })), ["allow", null]);
    assert.deepEqual(decide(http({ method: "POST", path: "/v1/refunds/77", body: { refund: { amount: 5000.5 }, currency: "EUR" } })), ["allow", null]);
    assert.deepEqual(decide(http({ method: "POST", path: "/v1/refunds/77", body: { refund: { amount: true }, currency: "EUR" } })), ["allow", null], "equality is typed");
    // A numeric string equal to the literal: typed equality says no, a coercing target says yes.
    assert.deepEqual(decide(http({ method: "POST", path: "/v1/refunds/77", body: { refund: { amount: "5000" }, currency: "EUR" } })), ["deny", "undecidable-body"]);
    assert.deepEqual(decide(http({ method: "GET", path: "/v1/refunds/77", body })), ["allow", null]);
    assert.deepEqual(decide(http({ path: "/admin" })), ["deny", "no-admin"], "/admin/** covers /admin itself");
    assert.deepEqual(decide(http({ path: "/administrator" })), ["allow", null]);
    assert.deepEqual(decide(http({ path: "/admin/users/1" })), ["deny", "no-admin"]);
  });

  it("matches header globs case-insensitively by name", () => {
    assert.deepEqual(decide(http({ headers: { "x-client": "batch-nightly" } })), ["deny", "internal-only"]);
    assert.deepEqual(decide(http({ headers: { "x-client": "agent" } })), ["allow", null]);
  });

  it("judges every MCP tool call of a request; the strictest wins", () => {
    assert.deepEqual(decide(http({ method: "POST", path: "/mcp", mcp: [{ tool: "lookup" }] })), ["allow", null]);
    assert.deepEqual(decide(http({ method: "POST", path: "/mcp", mcp: [{ tool: "send_email" }] })), ["approve", "send-needs-ok"]);
    assert.deepEqual(decide(http({ method: "POST", path: "/mcp", mcp: [{ tool: "send_email" }, { tool: "drop_table" }, { tool: "lookup" }] })), ["deny", "no-delete-tools"]);
  });

  it("refuses a malformed body_json path in the config", () => {
    assert.throws(() => parseConfig({ gateway: {}, identity: { dev_issuer: true }, rules: [{ name: "x", when: { http: { body_json: { "a..b": 1 } } }, action: "deny" }] }, "/x/p.yaml"), /dotted path/);
  });
});

describe("http rules match what the target will do", () => {
  const engineOf = (r: unknown[]) => new PolicyEngine(parseConfig({ gateway: { http: "127.0.0.1:0" }, identity: { dev_issuer: true }, rules: r }, "/x/p.yaml").rules);
  const paths = engineOf([
    { name: "refunds", when: { http: { methods: ["POST"], paths: ["/v1/refunds/**"] } }, action: "deny" },
    { name: "exact", when: { http: { paths: ["/v1/Export"] } }, action: "deny" },
    { name: "secrets", when: { http: { methods: ["GET"], paths: ["/v1/secrets/*"] } }, action: "deny" },
  ]);
  const onPaths = (op: Partial<Extract<Operation, { type: "http" }>>) => paths.decide(who, "api", http(op)).rule ?? null;

  it("matches paths case-insensitively unless the connection is case-sensitive", () => {
    assert.equal(onPaths({ method: "POST", path: "/V1/REFUNDS/9" }), "refunds");
    assert.equal(onPaths({ method: "POST", path: "/v1/Refunds/9" }), "refunds");
    assert.equal(onPaths({ path: "/V1/EXPORT" }), "exact");
    assert.equal(onPaths({ method: "POST", path: "/V1/REFUNDS/9", pathsCaseSensitive: true }), null);
    assert.equal(onPaths({ path: "/v1/Export", pathsCaseSensitive: true }), "exact");
  });

  it("covers the collection itself and ignores a trailing slash", () => {
    for (const path of ["/v1/refunds", "/v1/refunds/", "/v1/refunds/9", "/v1/refunds/9/"]) assert.equal(onPaths({ method: "POST", path }), "refunds", path);
    assert.equal(onPaths({ method: "POST", path: "/v1/refundsx" }), null);
    assert.equal(onPaths({ path: "/v1/export/" }), "exact");
    assert.equal(onPaths({ path: "/v1/export/x" }), null);
    // `*` does not match the empty segment a trailing slash leaves: an allow for items cannot take the collection.
    const order = engineOf([
      { name: "items", when: { http: { methods: ["POST"], paths: ["/v1/refunds/*"] } }, action: "allow" },
      { name: "collection", when: { http: { methods: ["POST"], paths: ["/v1/refunds/"] } }, action: "deny" },
    ]);
    for (const path of ["/v1/refunds", "/v1/refunds/"]) assert.equal(order.decide(who, "api", http({ method: "POST", path })).rule, "collection", path);
    assert.equal(order.decide(who, "api", http({ method: "POST", path: "/v1/refunds/9/" })).rule, "items");
  });

  it("takes GET to cover HEAD (Express runs GET handlers for HEAD)", () => {
    assert.equal(onPaths({ method: "HEAD", path: "/v1/secrets/1" }), "secrets");
    assert.equal(onPaths({ method: "OPTIONS", path: "/v1/secrets/1" }), null);
  });

  const amounts = engineOf([
    { name: "big", when: { http: { methods: ["POST"], paths: ["/v1/refunds/**"], body_json: { "$.amount": { gt: 100 } } } }, action: "deny" },
    { name: "band", when: { http: { paths: ["/band"], body_json: { "n": { gte: 10, lt: 20 } } } }, action: "deny" },
    { name: "currencies", when: { http: { paths: ["/cur"], body_json: { "c": { in: ["USD", "GBP"] }, "k": { ne: "test" } } } }, action: "deny" },
    { name: "eq-num", when: { http: { paths: ["/eq"], body_json: { "n": { eq: 5000 } } } }, action: "deny" },
    { name: "literal-object", when: { http: { paths: ["/obj"], body_json: { "o": { a: 1, b: [true, null] } } } }, action: "deny" },
    { name: "fallback", when: { http: { paths: ["/fallback"] } }, action: "allow" },
  ]);
  const onBody = (path: string, body: unknown) => {
    const d = amounts.decide(who, "api", http({ method: "POST", path, body }));
    return d.rule ?? null;
  };

  it("compares numbers, and numeric strings as their number", () => {
    for (const amount of [101, 100.5, 1e3, "101", "1e3", "+500", "0500", "100.01", 1e308]) assert.equal(onBody("/v1/refunds/1", { amount }), "big", String(amount));
    for (const amount of [100, 99, -0, 0, -1e9, "100", "99.99", "-500"]) assert.equal(onBody("/v1/refunds/1", { amount }), null, String(amount));
    assert.equal(onBody("/v1/refunds/1", {}), null, "an absent field does not match");
    assert.equal(onBody("/v1/refunds/1", { amount: "abc" }), null, "a string no parser reads as a number is not one");
    assert.equal(onBody("/band", { n: 10 }), "band");
    assert.equal(onBody("/band", { n: 20 }), null);
    assert.equal(onBody("/eq", { n: "5000" }), "eq-num", "eq with a number compares numerically");
    assert.equal(onBody("/eq", { n: 5000.0 }), "eq-num");
  });

  it("refuses what coercing targets read differently: hex, blanks, arrays, booleans, null, non-ASCII digits", () => {
    for (const amount of ["0x1f4", " 500", "500 ", "5e2abc", "1_000", "", "Infinity", "５００", [500], ["500"], true, null, { v: 500 }]) {
      assert.equal(onBody("/v1/refunds/1", { amount }), "undecidable-body", JSON.stringify(amount));
    }
  });

  it("refuses numbers that exact-decimal and double readers compare differently", () => {
    const loose = (text: string) => new LooseNumber(text, Number(text));
    assert.equal(onBody("/v1/refunds/1", { amount: loose("100.00000000000000001") }), "undecidable-body", "a double reads 100, exact readers more");
    assert.equal(onBody("/v1/refunds/1", { amount: loose("1e400") }), "big", "Infinity and 1e400 are both over 100");
    assert.equal(onBody("/v1/refunds/1", { amount: loose("-1e400") }), null);
    assert.equal(onBody("/v1/refunds/1", { amount: "100.00000000000000001" }), "undecidable-body");
  });

  it("in, ne, and typed literal objects whatever their key order", () => {
    assert.equal(onBody("/cur", { c: "GBP", k: "live" }), "currencies");
    assert.equal(onBody("/cur", { c: "GBP" }), "currencies", "an absent field is not equal to anything");
    assert.equal(onBody("/cur", { c: "GBP", k: "test" }), null);
    assert.equal(onBody("/cur", { c: "EUR", k: "live" }), null);
    assert.equal(onBody("/obj", { o: { b: [true, null], a: 1 } }), "literal-object");
    assert.equal(onBody("/obj", { o: { b: [true, null], a: 1, c: 2 } }), null);
    assert.equal(onBody("/obj", { o: { b: [true, null], a: "1" } }), "undecidable-body");
    // own properties only: "constructor" of a parsed object is not Object
    const proto = amounts.decide(who, "api", http({ method: "POST", path: "/cur", body: JSON.parse('{"c":"USD","k":"live"}') })).rule;
    assert.equal(proto, "currencies");
  });

  it("refuses a field present only in another case, or in several (case-insensitive binders read it)", () => {
    assert.equal(onBody("/v1/refunds/1", { AMOUNT: 5000 }), "undecidable-body");
    assert.equal(onBody("/v1/refunds/1", { amount: 1, Amount: 5000 }), "undecidable-body");
    assert.equal(onBody("/v1/refunds/1", { "\u212Amount": 1 }), null, "not a fold of amount");
    assert.equal(onBody("/cur", { C: "USD", k: "live" }), "undecidable-body");
    assert.equal(onBody("/v1/refunds/1", { amount: 1, other: 5000 }), null);
  });

  it("refuses an unreadable body when a body_json rule could apply, and only then", () => {
    const undecidable = { reason: "it is content-encoded", mcp: false };
    const d = amounts.decide(who, "api", http({ method: "POST", path: "/v1/refunds/1", undecidable }));
    assert.deepEqual([d.action, d.rule], ["deny", "undecidable-body"]);
    assert.match(d.message ?? "", /content-encoded/);
    assert.equal(amounts.decide(who, "api", http({ method: "GET", path: "/v1/refunds/1", undecidable })).rule, undefined, "the method rules it out");
    assert.equal(amounts.decide(who, "api", http({ method: "POST", path: "/fallback", undecidable })).rule, "fallback", "no body rule could apply");
  });

  it("refuses an unreadable MCP body when tool rules apply", () => {
    const undecidable = { reason: "it is not JSON", mcp: true };
    assert.equal(engine.decide(who, "api", http({ method: "POST", path: "/mcp", undecidable })).rule, "undecidable-body");
    assert.equal(amounts.decide(who, "api", http({ method: "POST", path: "/mcp", undecidable })).rule, undefined, "no tool rules");
  });

  it("validates operator objects in the config", () => {
    const bad = (v: unknown) => () => engineOf([{ name: "x", when: { http: { body_json: { a: v } } }, action: "deny" }]);
    assert.throws(bad({ gt: "100" }), /gt: expected a number/);
    assert.throws(bad({ gt: 1, other: 2 }), /only operators/);
    assert.throws(bad({ in: [] }), /non-empty list/);
    assert.doesNotThrow(bad({ gte: 1, lte: 5 }));
    assert.doesNotThrow(bad({ eq: { gt: 1 } }));
  });
});

describe("request bodies read as the target would", () => {
  const read = (body: Buffer | string, headers: Record<string, string> = { "content-type": "application/json" }) => readJsonBody(headers, Buffer.from(body));
  const reason = (body: Buffer | string, headers?: Record<string, string>) => {
    const r = read(body, headers);
    return r.kind === "undecidable" ? r.reason : r.kind;
  };

  it("reads strict UTF-8 JSON whatever the content type", () => {
    assert.deepEqual(read('{"a":[1,"x",null]}'), { kind: "json", value: Object.assign(Object.create(null), { a: [1, "x", null] }) });
    assert.equal(read('{"amount": 500}', { "content-type": "text/plain" }).kind, "json");
    assert.equal(read('{"amount": 500}', {}).kind, "json");
    assert.equal(read("").kind, "empty");
    assert.equal(read('{"a":1}', { "content-type": 'application/json; charset="UTF-8"' }).kind, "json");
  });

  it("refuses content codings, other charsets, byte order marks and bytes that are not UTF-8", () => {
    assert.match(reason('{"a":1}', { "content-encoding": "gzip" }), /content-encoded/);
    assert.match(reason('{"a":1}', { "content-type": "application/json; charset=utf-16" }), /charset/);
    assert.match(reason('{"a":1}', { "content-type": "application/json; charset=latin1" }), /charset/);
    assert.match(reason(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')])), /byte order mark/);
    assert.match(reason(Buffer.from('\ufeff{"a":1}', "utf16le")), /not UTF-8/);
    assert.match(reason(Buffer.from('{"a":1}', "utf16le")), /not JSON/);
  });

  it("refuses duplicate keys (also spelled with escapes), lone surrogates, and what is not RFC 8259 JSON", () => {
    assert.match(reason('{"amount":1,"amount":5000}'), /duplicate key/);
    assert.match(reason('{"a":{"amount":1,"amo\\u0075nt":5000}}'), /duplicate key/);
    assert.match(reason('{"a":"\\ud800"}'), /lone surrogate/);
    for (const bad of ["{'a':1}", '{"a":1,}', '{"a":NaN}', '{"a":01}', '{"a":1} x', '[1,]', '{"a":"\t"}', "// c\n{}", '{"a":.5}']) assert.match(reason(bad), /not JSON/, bad);
    assert.match(reason("[".repeat(300) + "]".repeat(300)), /nests deeper/);
  });

  it("keeps numbers whose text their double does not give back", () => {
    const v = (read('{"a":12345678901234567891,"b":1e400,"c":0.1,"d":1E3,"e":-0}') as { value: Record<string, unknown> }).value;
    assert.ok(v.a instanceof LooseNumber && v.a.text === "12345678901234567891");
    assert.ok(v.b instanceof LooseNumber && v.b.value === Infinity);
    assert.equal(v.c, 0.1);
    assert.equal(v.d, 1000);
    assert.ok(Object.is(v.e, -0));
  });
});

describe("paths targets disagree about are refused", () => {
  const judged = (p: string) => targetPath(`/c/api${p}`, "api").judged;
  it("refuses matrix parameters, empty segments, trailing dots and spaces, and Unicode that folds to ASCII", () => {
    for (const p of ["/v1/refunds;x=1/9", "/v1/refunds%3B/9", "/v1//refunds/9", "//v1/refunds", "/v1/refunds./9", "/v1/refunds%20/9", "/v1/refunds...",
      "/v1/%EF%BD%92%EF%BD%85funds/9", "/v1/re%E2%80%8Bfunds", "/v1/%E2%84%AAeys", "/v1/%C5%BFecrets", "/v1/%C4%B1tems", "/v1/%09x", "/v1/x%C2%A0",
      "/v1/a%E2%80%A8b", "/v1/dry_run%CC%81", "/v1/%EE%80%80", "/v1/%CD%B8"]) {
      assert.throws(() => judged(p), /matrix|empty segment|ending in|control, invisible|Unicode/, p);
    }
  });
  it("keeps other paths, non-ASCII ones included", () => {
    assert.equal(judged("/v1/caf%C3%A9/9"), "/v1/café/9");
    assert.equal(judged("/v1/refunds/"), "/v1/refunds/");
    assert.equal(judged("/v1/a.b/c"), "/v1/a.b/c");
    assert.equal(judged("/"), "/");
  });
});
