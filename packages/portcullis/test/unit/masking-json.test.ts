/**
 * JSON masking by key and by value, over parsed values and over JSON text (token rewrites that
 * leave every other byte as it was).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KNOWN_DETECTORS } from "../../src/masking/detectors/index.js";
import { compileJsonMasker } from "../../src/masking/json-masker.js";
import { compileTextMasker } from "../../src/masking/text-masker.js";

const KEY = Buffer.from("test-masking-key");
const detectors = compileTextMasker([...KNOWN_DETECTORS], "redact", KEY);
const masker = compileJsonMasker({ keys: ["ssn", "*_token", "card*", "pass?ord"], keyStrategy: "partial", detectors, key: KEY });

describe("JSON masking by key", () => {
  it("matches key names by case-insensitive glob, whole names only", () => {
    const out = masker({ SSN: "123456789", Ssn_note: "x", user_token: "abcdefgh", token: "abcdefgh", CardNumber: "4111", password: "hunter22", passwd: "x" });
    assert.deepEqual(out, { SSN: "*****6789", Ssn_note: "x", user_token: "****efgh", token: "abcdefgh", CardNumber: "****", password: "****er22", passwd: "x" });
  });

  it("masks numbers and booleans as their text, keeps null", () => {
    assert.deepEqual(masker({ ssn: 123456789, card_ok: true, card_exp: null }), { ssn: "*****6789", card_ok: "****", card_exp: null });
  });

  it("masks every leaf of an object or array under a matched key, at any depth", () => {
    const out = masker({ card: { number: "4111111111111111", exp: "12/27", holder: { name: "Alice Smith" }, tags: ["a", 12345] }, other: "fine" });
    assert.deepEqual(out, { card: { number: "************1111", exp: "*2/27", holder: { name: "*******mith" }, tags: ["*", "*2345"] }, other: "fine" });
  });

  it("types redactions after the key as written", () => {
    const m = compileJsonMasker({ keys: ["*ssn*"], keyStrategy: "redact" });
    assert.deepEqual(m({ customer: { Tax_SSN: "123-45-6789", list: { ssn: ["1", "2"] } } }), {
      customer: { Tax_SSN: "[REDACTED:Tax_SSN]", list: { ssn: ["[REDACTED:ssn]", "[REDACTED:ssn]"] } },
    });
  });

  it("with the null strategy every leaf under a matched key is null", () => {
    const m = compileJsonMasker({ keys: ["secret*"], keyStrategy: "null" });
    assert.deepEqual(m({ secrets: { a: "x", b: [1, true, { c: "y" }] }, keep: 1 }), { secrets: { a: null, b: [null, null, { c: null }] }, keep: 1 });
  });

  it("hash under keys is the same hash the text masker produces", () => {
    const m = compileJsonMasker({ keys: ["email"], keyStrategy: "hash", key: KEY });
    const viaText = compileTextMasker(["email"], "hash", KEY).mask("alice@example.com");
    assert.deepEqual(m({ email: "alice@example.com" }), { email: viaText });
    assert.throws(() => compileJsonMasker({ keys: ["email"], keyStrategy: "hash" }), /needs the masking key/);
  });
});

describe("JSON masking by value", () => {
  it("runs every other string through the detectors", () => {
    const out = masker({ note: "reach me at bob@example.com or 555-123-4567", list: ["4111 1111 1111 1111", "plain"] });
    assert.deepEqual(out, { note: "reach me at [REDACTED:email] or [REDACTED:phone]", list: ["[REDACTED:credit_card]", "plain"] });
  });

  it("masks numbers whose text a detector matches (they become strings), and object keys", () => {
    assert.deepEqual(masker({ pan: 4111111111111111, qty: 3, "alice@example.com": { visits: 2 } }), {
      pan: "[REDACTED:credit_card]",
      qty: 3,
      "[REDACTED:email]": { visits: 2 },
    });
    const nulling = compileJsonMasker({ detectors: compileTextMasker(["credit_card"], "null", KEY) });
    assert.deepEqual(nulling({ pan: 4111111111111111, note: "pan 4111111111111111" }), { pan: null, note: "pan " });
  });

  it("returns the very same value when nothing was masked, and shares unchanged subtrees", () => {
    const clean = { a: [1, "x", { b: null }], c: { d: "plain text", e: true } };
    assert.equal(masker(clean), clean);
    const doc = { clean: { deep: [1, 2, 3] }, dirty: { email: "bob@example.com" } };
    const out = masker(doc) as typeof doc;
    assert.notEqual(out, doc);
    assert.equal(out.clean, doc.clean);
    assert.deepEqual(out.dirty, { email: "[REDACTED:email]" });
  });

  it("leaves scalars and non-JSON values alone when there is nothing to find", () => {
    for (const v of [null, true, 42, "ok", [], {}]) assert.equal(masker(v), v);
  });
});

describe("maskJsonText", () => {
  it("is undefined when nothing was masked, so the original bytes go through", () => {
    assert.equal(masker.maskJsonText('{"a": 1, "b": [true, null, "plain"], "c": {}}'), undefined);
    assert.equal(masker.maskJsonText("[]"), undefined);
    assert.equal(masker.maskJsonText('"just a string"'), undefined);
  });

  it("rewrites only the masked tokens: whitespace, key order, number spelling and escapes stay", () => {
    const text = '{\n  "id": 12345678901234567890,\n  "ratio" : 1.50e+3,\n  "ssn":"123-45-6789",\n  "note": "tab\\there \\u00e9",\n  "mail" :\t"bob@example.com"\n}';
    assert.equal(
      masker.maskJsonText(text),
      '{\n  "id": 12345678901234567890,\n  "ratio" : 1.50e+3,\n  "ssn":"*******6789",\n  "note": "tab\\there \\u00e9",\n  "mail" :\t"[REDACTED:email]"\n}',
    );
  });

  it("decodes escapes before detecting, so an escaped value cannot slip through", () => {
    assert.equal(masker.maskJsonText('{"m": "bob\\u0040example.com", "q": "say \\"555-123-4567\\""}'), '{"m": "[REDACTED:email]", "q": "say \\"[REDACTED:phone]\\""}');
  });

  it("masks by key through nested containers, numbers and booleans included", () => {
    assert.equal(
      masker.maskJsonText('{"card": {"number": 4111111111111111, "ok": true, "none": null, "list": [1234, "abcdef"]}, "n": 5}'),
      '{"card": {"number": "************1111", "ok": "****", "none": null, "list": ["****", "**cdef"]}, "n": 5}',
    );
  });

  it("masks object keys and number tokens by value", () => {
    assert.equal(masker.maskJsonText('{"alice@example.com": 1, "pan": 4111111111111111}'), '{"[REDACTED:email]": 1, "pan": "[REDACTED:credit_card]"}');
  });

  it("gives the same result as masking the parsed value", () => {
    const docs = [
      '{"users":[{"name":"Ann","email":"ann@example.com","ssn":"123-45-6789","card_number":"4111111111111111"},{"name":"Bo","phone":"+44 20 7946 0958"}]}',
      '[{"access_token":"abc123def456","note":"ip 10.0.0.1"}, 4111111111111111, "x"]',
    ];
    for (const d of docs) assert.deepEqual(JSON.parse(masker.maskJsonText(d)!), masker(JSON.parse(d)));
  });

  it("masks text that is not JSON with the detectors", () => {
    for (const bad of ["not json bob@example.com", '{"a": 1', '{"a": 1}}', "{'a': 'bob@example.com'}", '{"a": 01}', "[1,]"]) {
      assert.equal(masker.maskJsonText(bad), detectors.mask(bad), bad);
    }
  });

  it("handles deep nesting without recursion", () => {
    const depth = 20000;
    const text = "[".repeat(depth) + '"bob@example.com"' + "]".repeat(depth);
    assert.equal(masker.maskJsonText(text), "[".repeat(depth) + '"[REDACTED:email]"' + "]".repeat(depth));
  });
});
