/** `portcullis demo` as a newcomer runs it: the whole incident, and its summary, from the CLI. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cli } from "../support/cli.js";

describe("portcullis demo", () => {
  it("stages the incident end to end and reports every step in its summary", async () => {
    const r = await cli(["demo"]);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    const summary = r.stdout.slice(r.stdout.indexOf("\nSummary"));
    for (const line of [
      /✓ research graph completed; PII masked in everything the model saw: yes/,
      /✓ bulk export held for approval \(PX001\); bulk read stopped after 1000 of 5000 rows \(PX004\)/,
      /✓ DROP TABLE denied: yes/,
      /✓ contractor revoked; live session ended in \d+ ms; reconnect refused \(PX003\)/,
      /✓ alerts delivered: .*budget_exceeded.*revoked_identity_used/,
      /✓ replayed the contractor's first session: 2 operations/,
      /✓ audit chain verified: intact, \d+ records/,
    ]) assert.match(summary, line);
    // Nothing sensitive on screen: every value the demo seeded is shown masked.
    assert.ok(!/@example\.com|4111 1111 1111 1111|\d{3}-\d{2}-\d{4}/.test(r.stdout), "a seeded value was printed unmasked");
  });
});
