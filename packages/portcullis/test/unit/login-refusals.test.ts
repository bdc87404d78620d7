/**
 * Refused logins as audit records, bounded: a flood from one source (or many) writes at most the
 * caps per window plus one summary, and the summary says how many were left out.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AuditEntry } from "../../src/audit/chain.js";
import { type LoginRefusal, LoginRefusals } from "../../src/core/login-refusals.js";

const LIMITS = { windowMs: 60_000, perSource: 5, total: 12, summarySources: 3 };

function setup() {
  const written: AuditEntry[] = [];
  let clock = 5_000_000;
  const refusals = new LoginRefusals((e) => written.push(e), LIMITS, () => clock);
  return { written, refusals, advance: (ms: number) => { clock += ms; } };
}

const bad = (client: string, connection = "app"): LoginRefusal => ({ protocol: "postgres", connection, client, reason: "E_TOKEN_INVALID" });

describe("login refusal records", () => {
  it("writes one record per kind, with the subject when known and nothing else", () => {
    const { written, refusals } = setup();
    refusals.record({ protocol: "http", connection: "billing", client: "10.0.0.1:4000", reason: "E_ACCESS_DENIED", sub: "intern", iss: "dev" });
    refusals.record(bad("10.0.0.1:4001"));
    assert.deepEqual(written.map((e) => [e.type, e.data]), [
      ["login_refused", { protocol: "http", connection: "billing", client: "10.0.0.1:4000", reason: "E_ACCESS_DENIED", sub: "intern", iss: "dev" }],
      ["login_refused", { protocol: "postgres", connection: "app", client: "10.0.0.1:4001", reason: "E_TOKEN_INVALID" }],
    ]);
  });

  it("a flood from one source: per-source cap, then one summary when the window ends", () => {
    const { written, refusals, advance } = setup();
    // Same kind again and again, and made-up connection names to dodge the per-kind rule.
    for (let i = 0; i < 5000; i++) refusals.record(bad(`192.0.2.7:${1000 + (i % 60000)}`));
    for (let i = 0; i < 5000; i++) refusals.record(bad("192.0.2.7:999", `db-${i}`));
    assert.equal(written.length, LIMITS.perSource, "one source writes at most perSource records a window");
    // Another source is not silenced by the first.
    refusals.record(bad("198.51.100.1:5"));
    assert.equal(written.length, LIMITS.perSource + 1);
    advance(LIMITS.windowMs);
    refusals.flush();
    const summary = written.at(-1)!;
    assert.equal(summary.type, "login_refused");
    assert.equal(summary.data.summary, true);
    assert.equal(summary.data.count, 10_000 - LIMITS.perSource);
    assert.deepEqual(summary.data.sources, [{ protocol: "postgres", source: "192.0.2.7", reason: "E_TOKEN_INVALID", count: 10_000 - LIMITS.perSource }]);
    // A new window starts afresh.
    refusals.record(bad("192.0.2.7:1"));
    assert.equal(written.length, LIMITS.perSource + 3);
  });

  it("many sources: the global cap holds; IPv6 counts by /64", () => {
    const { written, refusals } = setup();
    for (let i = 0; i < 2000; i++) refusals.record(bad(`2001:db8:0:1::${i.toString(16)}:5432`, `db-${i}`));
    for (let i = 0; i < 2000; i++) refusals.record(bad(`203.0.${i >> 8}.${i & 255}:5432`));
    assert.equal(written.length, LIMITS.total);
    assert.equal(written.filter((e) => String(e.data.client).startsWith("2001:db8")).length, LIMITS.perSource, "one /64 is one source");
    refusals.flush();
    assert.equal(written.length, LIMITS.total + 1);
    assert.equal(written.at(-1)!.data.count, 4000 - LIMITS.total);
    assert.equal((written.at(-1)!.data.sources as unknown[]).length, LIMITS.summarySources);
  });

  it("writes no summary when nothing was left out", () => {
    const { written, refusals } = setup();
    refusals.record(bad("10.1.1.1:1"));
    refusals.flush();
    refusals.close();
    assert.equal(written.length, 1);
  });
});
