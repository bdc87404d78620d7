/** The `options` startup parameter: the gateway's `portcullis.*` settings are taken out, the rest forwarded. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStartupOptions } from "../../src/protocols/postgres/startup-options.js";

const parse = (text: string | undefined) => {
  const r = parseStartupOptions(text);
  return { gateway: Object.fromEntries(r.gateway), forward: r.forward };
};

describe("parseStartupOptions", () => {
  it("takes -c portcullis.* out and forwards the other -c settings", () => {
    assert.deepEqual(parse("-c portcullis.approval=defer -c search_path=x"), {
      gateway: { approval: "defer" },
      forward: "-c search_path=x",
    });
  });

  it("takes --portcullis.* (long form) out; nothing left means nothing forwarded", () => {
    assert.deepEqual(parse("--portcullis.run_id=r1"), { gateway: { run_id: "r1" }, forward: undefined });
  });

  it("accepts the attached form -cname=value", () => {
    assert.deepEqual(parse("-cportcullis.run_id=r2 -cstatement_timeout=5s"), {
      gateway: { run_id: "r2" },
      forward: "-cstatement_timeout=5s",
    });
  });

  it("keeps a backslash-escaped space inside a value, and escapes it again when forwarding", () => {
    assert.deepEqual(parse("-c application_name=a\\ b"), { gateway: {}, forward: "-c application_name=a\\ b" });
    assert.deepEqual(parse("-c portcullis.run_id=a\\ b -c application_name=c\\ d"), {
      gateway: { run_id: "a b" },
      forward: "-c application_name=c\\ d",
    });
    // An escaped backslash survives the round trip too.
    assert.deepEqual(parse("-c application_name=x\\\\y"), { gateway: {}, forward: "-c application_name=x\\\\y" });
  });

  it("matches the prefix and the name case-insensitively, and keeps the value's case", () => {
    assert.deepEqual(parse("-c PORTCULLIS.Run_Id=AbC"), { gateway: { run_id: "AbC" }, forward: undefined });
    assert.deepEqual(parse("--Portcullis.APPROVAL=Defer"), { gateway: { approval: "Defer" }, forward: undefined });
  });

  it("splits on any run of whitespace and ignores leading and trailing whitespace", () => {
    assert.deepEqual(parse("  -c   portcullis.run_id=r1\t\n-c  search_path=x  "), {
      gateway: { run_id: "r1" },
      forward: "-c search_path=x",
    });
  });

  it("keeps the value after the first '=' whole", () => {
    assert.deepEqual(parse("-c portcullis.run_id=a=b=c"), { gateway: { run_id: "a=b=c" }, forward: undefined });
  });

  it("leaves everything else alone", () => {
    // No '=': not a setting the gateway can take.
    assert.deepEqual(parse("-c portcullis.run_id"), { gateway: {}, forward: "-c portcullis.run_id" });
    // Something that merely contains the prefix.
    assert.deepEqual(parse("-c application_name=portcullis.x=y"), { gateway: {}, forward: "-c application_name=portcullis.x=y" });
    assert.deepEqual(parse("-c xportcullis.a=b"), { gateway: {}, forward: "-c xportcullis.a=b" });
    // A lone trailing -c.
    assert.deepEqual(parse("-c portcullis.a=b -c"), { gateway: { a: "b" }, forward: "-c" });
  });

  it("returns undefined to forward for no options, empty options, or only gateway settings", () => {
    assert.deepEqual(parse(undefined), { gateway: {}, forward: undefined });
    assert.deepEqual(parse("   "), { gateway: {}, forward: undefined });
    assert.deepEqual(parse("-c portcullis.approval=defer --portcullis.run_id=r1 -c PORTCULLIS.agent=a"), {
      gateway: { approval: "defer", run_id: "r1", agent: "a" },
      forward: undefined,
    });
  });

  it("returns undefined (not an empty string) to forward for an empty options parameter", () => {
    // The contract: "undefined when nothing is left". The adapter only tests truthiness, so this is cosmetic.
    assert.deepEqual(parse(""), { gateway: {}, forward: undefined });
  });

  it("the last of a repeated gateway setting wins", () => {
    assert.deepEqual(parse("-c portcullis.run_id=a -c portcullis.run_id=b"), { gateway: { run_id: "b" }, forward: undefined });
  });
});
