/** Masking strategies (SPEC §5): redact, partial (code points), hash (HMAC-SHA256, keyed, stable), null. */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { applyStrategy, hashValue, isStrategy, partial, STRATEGIES } from "../../src/masking/strategies.js";

const KEY = Buffer.from("0123456789abcdef0123456789abcdef");

describe("masking strategies", () => {
  it("redact names the type, never the value", () => {
    assert.equal(applyStrategy("alice@example.com", "redact", "email", KEY), "[REDACTED:email]");
    assert.equal(applyStrategy("4111111111111111", "redact", "payments.card_number", KEY), "[REDACTED:payments.card_number]");
  });

  it("partial keeps the last 4 characters", () => {
    assert.equal(applyStrategy("4111111111111111", "partial", "credit_card", KEY), "************1111");
    assert.equal(partial("123-45-6789"), "*******6789");
    assert.equal(partial("abcde"), "*bcde");
  });

  it("partial masks values of 4 characters or fewer entirely", () => {
    assert.equal(partial("abcd"), "****");
    assert.equal(partial("abc"), "***");
    assert.equal(partial("a"), "*");
    assert.equal(partial(""), "");
  });

  it("partial counts Unicode code points, not UTF-16 units", () => {
    assert.equal(partial("jöhn.dœ@exämple.com"), "***************.com");
    assert.equal(partial("Zoë Müller"), "******ller");
    assert.equal(partial("👍👍👍👍👍"), "*👍👍👍👍");
    assert.equal(partial("a😀b😀c"), "*😀b😀c");
    assert.equal(partial("😀😀😀😀"), "****");
    assert.equal(partial("日本語のテキスト"), "****テキスト");
  });

  it("hash is the first 16 hex digits of HMAC-SHA256 with the deployment key", () => {
    const expected = "hash:" + createHmac("sha256", KEY).update("alice@example.com").digest("hex").slice(0, 16);
    assert.equal(applyStrategy("alice@example.com", "hash", "email", KEY), expected);
    assert.match(hashValue("x", KEY), /^hash:[0-9a-f]{16}$/);
  });

  it("hash is stable (joinable) and does not depend on the type", () => {
    const a = applyStrategy("alice@example.com", "hash", "email", KEY);
    assert.equal(applyStrategy("alice@example.com", "hash", "email", KEY), a);
    assert.equal(applyStrategy("alice@example.com", "hash", "customers.email", KEY), a);
    assert.notEqual(applyStrategy("bob@example.com", "hash", "email", KEY), a);
  });

  it("hash depends on the key, so values cannot be looked up across deployments", () => {
    const other = Buffer.from("another deployment key, 32 bytes");
    assert.notEqual(hashValue("alice@example.com", other), hashValue("alice@example.com", KEY));
  });

  it("hash hashes the UTF-8 bytes of the value", () => {
    const expected = "hash:" + createHmac("sha256", KEY).update(Buffer.from("Zoë", "utf8")).digest("hex").slice(0, 16);
    assert.equal(hashValue("Zoë", KEY), expected);
  });

  it("null is null", () => {
    assert.equal(applyStrategy("alice@example.com", "null", "email", KEY), null);
  });

  it("knows its strategies and rejects others", () => {
    assert.deepEqual([...STRATEGIES], ["redact", "partial", "hash", "null"]);
    for (const s of STRATEGIES) assert.ok(isStrategy(s));
    assert.ok(!isStrategy("scramble") && !isStrategy(undefined));
    assert.throws(() => applyStrategy("x", "scramble" as never, "t", KEY), /unknown masking strategy/);
  });
});
