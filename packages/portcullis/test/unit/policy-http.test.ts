/** HTTP and MCP conditions of the policy engine: methods, path globs, headers, JSON body fields, tool names. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import type { Operation } from "../../src/policy/decision.js";
import { PolicyEngine } from "../../src/policy/engine.js";

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
    assert.deepEqual(decide(http({ method: "POST", path: "/v1/refunds/77", body: { refund: { amount: "5000" }, currency: "EUR" } })), ["allow", null], "equality is typed");
    assert.deepEqual(decide(http({ method: "GET", path: "/v1/refunds/77", body })), ["allow", null]);
    assert.deepEqual(decide(http({ path: "/admin" })), ["allow", null], "** needs something below /admin/");
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
