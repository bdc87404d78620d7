/**
 * The classification cache key: numbers out, everything that can change a classification kept.
 * The property that matters: two texts with one key classify alike (checked over the whole corpus).
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { literalFreeKey } from "../../src/policy/sql/cache-key.js";
import { classifySql, loadSqlParser } from "../../src/policy/sql/classify.js";
import { CORPUS } from "./policy-corpus.data.js";

describe("classification cache key", () => {
  before(() => loadSqlParser());

  it("takes numbers out and keeps everything else", () => {
    const cases: Array<[string, string]> = [
      ["SELECT abalance FROM pgbench_accounts WHERE aid = 12345;", "SELECT abalance FROM pgbench_accounts WHERE aid = ?;"],
      ["select 1.5e-3, 2 from t1 where c2 = $1 limit 10", "select ?, ? from t1 where c2 = $1 limit ?"],
      ["select 1from secrets", "select 1from secrets"],
      ["select 0x1F", "select 0x1F"],
      ["select '123', \"col 5\", E'\\'9', $$ 42 $$, $q$ 7 $q$ -- 8\n/* 9 /* 10 */ */ from t", "select '123', \"col 5\", E'\\'9', $$ 42 $$, $q$ 7 $q$ -- 8\n/* 9 /* 10 */ */ from t"],
      ["select a$1 from t", "select a$1 from t"],
      ["select 'unterminated 5", "select 'unterminated 5"],
    ];
    for (const [sql, key] of cases) assert.equal(literalFreeKey(sql), key, sql);
  });

  it("never lets two texts with different classifications share a key (whole corpus, numbers varied)", () => {
    const texts = CORPUS.flatMap((t) => t.entries.map((e) => e.sql));
    const byKey = new Map<string, string>();
    for (const sql of texts) {
      for (const variant of [sql, sql.replace(/\d/g, (d) => String((Number(d) + 3) % 10))]) {
        const key = literalFreeKey(variant);
        const cls = JSON.stringify(classifySql(variant).map((s) => ({ ...s, error: undefined })));
        const seen = byKey.get(key);
        if (seen !== undefined) assert.equal(cls, seen, `texts sharing key ${JSON.stringify(key.slice(0, 80))} classify differently`);
        else byKey.set(key, cls);
      }
    }
    assert.ok(byKey.size > 200);
  });
});
