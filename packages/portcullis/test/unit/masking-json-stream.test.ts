/** The streaming JSON masker gives byte for byte what the whole-document masker gives, however the text is cut. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileJsonMasker } from "../../src/masking/json-masker.js";
import { JsonStreamMasker } from "../../src/masking/json-stream.js";
import { compileTextMasker } from "../../src/masking/text-masker.js";
import { prng } from "../support/prng.js";

const key = Buffer.alloc(32, 1);
const masker = compileJsonMasker({ keys: ["ssn", "*_token"], keyStrategy: "redact", key, detectors: compileTextMasker(["email", "credit_card"], "redact", key) });

const DOCS = [
  '{"a":1,"ssn":"123-45-6789","list":[1,2,{"email":"x@example.com","api_token":{"v":[true,null,"s"]}}],"n":-12.5e3}',
  '[ "plain", "mail me: bob@example.org", 4111111111111111, {"nested":{"ssn":[1,"2",{"x":3}]}} ]',
  '{"esc":"quote \\" and \\\\ and \\u00e9 and carol@example.net","k\\"ey":"v","emoji":"😀 dave@example.com"}',
  '{}',
  '[]',
  '{"a":[],"b":{},"c":[[],[{}]],"d":""}',
  '{"x":1}\n{"email":"eve@example.com"}\n[2]\n',
  '  "top-level string frank@example.com"  ',
  "123",
  "true",
];

function streamed(text: string, cuts: number[]): string {
  const s = new JsonStreamMasker(masker.tokens);
  let out = "";
  let last = 0;
  for (const c of [...cuts, text.length]) {
    out += s.push(text.slice(last, c));
    last = c;
  }
  return out + s.end();
}

describe("streaming JSON masking", () => {
  it("matches the whole-document masker at every single cut and at random cut sets", () => {
    const rand = prng(7);
    for (const doc of DOCS.slice(0, 6)) {
      const whole = masker.maskJsonText(doc) ?? doc;
      for (let i = 0; i <= doc.length; i++) assert.equal(streamed(doc, [i]), whole, `cut at ${i} of ${doc}`);
      for (let k = 0; k < 200; k++) {
        const cuts = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => Math.floor(rand() * doc.length)).sort((a, b) => a - b);
        assert.equal(streamed(doc, cuts), whole);
      }
    }
  });

  it("masks NDJSON and top-level scalars", () => {
    assert.equal(streamed(DOCS[6]!, [5, 17]), '{"x":1}\n{"email":"[REDACTED:email]"}\n[2]\n');
    assert.equal(streamed(DOCS[7]!, [10]), '  "top-level string [REDACTED:email]"  ');
    assert.equal(streamed("123", [1]), "123");
    assert.equal(streamed("true", [2]), "true");
  });

  it("fails on invalid or truncated documents instead of passing them", () => {
    for (const bad of ['{"a":1,}', '{"a" 1}', '[1 2]', '{"a":"unterminated', '{"a":[1,2]', "tru", '{"a":"\u0001"}', "@"]) {
      assert.throws(() => streamed(bad, [2]), /not valid JSON/, bad);
    }
  });

  it("keeps memory to the token being read, and refuses a token over the limit", () => {
    const s = new JsonStreamMasker(masker.tokens, 1000);
    let out = s.push('{"items":[');
    for (let i = 0; i < 10_000; i++) out += s.push(`${i ? "," : ""}{"id":${i},"email":"u${i}@example.com"}`);
    out += s.push("]}") + s.end();
    assert.ok(!out.includes("@example.com"));
    const big = new JsonStreamMasker(masker.tokens, 1000);
    big.push('{"blob":"');
    assert.throws(() => big.push("x".repeat(2000)), /larger than 1000/);
  });
});
