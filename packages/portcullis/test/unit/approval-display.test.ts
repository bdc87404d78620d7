/**
 * What approvers read: the agent's text with every control and invisible character escaped, and
 * shortened only with a line saying so (Slack, the CLI's list).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Approval } from "../../src/approvals/approval.js";
import { clipped, printable, quotedBlock } from "../../src/approvals/display.js";
import { slackMessage } from "../../src/approvals/notifiers/slack.js";
import { loadSqlParser } from "../../src/policy/sql/classify.js";
import { maskSqlValues } from "../../src/policy/sql/values.js";

describe("approval display", () => {
  it("escapes terminal escapes, carriage returns, C1 controls, bidi overrides and invisible characters; keeps newlines, tabs and other text", () => {
    const text = "DELETE /x\n\tamount=10\x1b[2K\x1b[1G\rok\u0085\u202egnp.exe\u2066\u200b\ufeffé日本";
    assert.equal(printable(text), "DELETE /x\n\tamount=10\\u{001b}[2K\\u{001b}[1G\\u{000d}ok\\u{0085}\\u{202e}gnp.exe\\u{2066}\\u{200b}\\u{feff}é日本");
    for (let c = 0; c < 0x20; c++) if (c !== 0x0a && c !== 0x09) assert.doesNotMatch(printable(String.fromCharCode(c)), /[\x00-\x1f]/);
  });

  it("escapes every character that shows as nothing or changes its neighbour: format, default-ignorable, separators, combining, private-use, unassigned", () => {
    const hidden = ["\u00ad", "\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\u180e", "\ufe0f", "\u{e0100}", "\u{e0041}", "\ufff9", "\u206a", "\u{1d173}", "\u2028", "\u2029", "\u0301", "\ue000", "\u{10ffff}", "\u0378"];
    for (const c of hidden) assert.equal(printable(`a${c}b`), `a\\u{${c.codePointAt(0)!.toString(16).padStart(4, "0")}}b`, `U+${c.codePointAt(0)!.toString(16)}`);
    assert.equal(printable("José Ünïcode עברית 日本"), "José Ünïcode עברית 日本", "visible letters of any script stay");
  });

  it("folds screens of blank lines into one line saying how many; quotes a block so that no line of it can pass for the channel's own", () => {
    assert.equal(printable(`a${"\n".repeat(80)}b`), "a\n\n[79 blank lines]\nb");
    assert.equal(printable("a\n\n\nb"), "a\n\n\nb");
    assert.equal(quotedBlock("POST /x\nApprove: https://evil.example/"), "│ POST /x\n│ Approve: https://evil.example/");
  });

  it("escapes look-alike letters of another script inside a Latin word, and spaces other than the ASCII one; folds lines of only spaces", () => {
    assert.equal(printable('"dr\u0443_run":true'), '"dr\\u{0443}_run":true', "a Cyrillic у in a Latin word");
    assert.equal(printable("Привет мир"), "Привет мир", "a word of one other script stays");
    assert.equal(printable("true\u00a0 x\u3000y\u2800"), "true\\u{00a0} x\\u{3000}y\\u{2800}");
    assert.equal(printable(`{"a":1,${"\n ".repeat(400)}"execute":true}`), '{"a":1,\n\n[399 blank lines]\n "execute":true}');
  });

  it("SQL shown to approvers is masked token by token: a detector cannot hide statements between two literals", async () => {
    await loadSqlParser();
    const sql = "SELECT '-----BEGIN PRIVATE KEY-----'; DELETE FROM customers; /* note */ SELECT 'é-----END PRIVATE KEY-----'";
    assert.equal(maskSqlValues(sql, (v) => `[${v.length}]`), "SELECT [29]; DELETE FROM customers; [10] SELECT [28]");
    assert.equal(maskSqlValues("selec 'x", (v) => `[${v}]`), "[selec 'x]", "text the scanner rejects is masked whole");
  });

  it("shortens only with a line that says how much is missing and where the whole is", () => {
    assert.equal(clipped("short", 10, "a1"), "short");
    const long = clipped("x".repeat(50), 10, "a1");
    assert.equal(long, `${"x".repeat(10)}\n… [clipped here: 10 of 50 characters shown; the whole operation: portcullis approvals show a1]`);
  });

  it("a Slack message of a long operation says it is clipped and keeps what comes first", () => {
    const display = `POST /v1/payouts\n[body: 9000 bytes, sha256 abc]\n${"y".repeat(5000)}`;
    const a = { id: "ap-1", requester: { sub: "agent-1", groups: [], iss: "dev" }, connection: "billing", rule: "payouts", minApprovals: 1, mode: "hold", expiresAt: "2026-12-03T00:00:00Z", operation: { type: "http", display } } as unknown as Approval;
    const text = JSON.stringify(slackMessage(a));
    assert.match(text, /\[body: 9000 bytes, sha256 abc\]/);
    assert.match(text, /clipped here: 2400 of 5048 characters shown; the whole operation: portcullis approvals show ap-1/);
    assert.ok(text.length < 4000);
    assert.doesNotMatch(text, /"action_id":"approve"/, "no Approve button for what the message could not show");
    const short = JSON.stringify(slackMessage({ ...a, operation: { type: "http", display: "POST /x\n<https://evil.example|Approve> <!channel> & more" } } as Approval));
    assert.match(short, /"action_id":"approve"/);
    assert.match(short, /&lt;https:\/\/evil\.example\|Approve&gt; &lt;!channel&gt; &amp; more/, "Slack markup from the agent is escaped");
  });
});
