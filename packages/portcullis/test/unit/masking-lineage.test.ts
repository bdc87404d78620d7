/** Column lineage over parse trees: which output columns derive from a masked column. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { ColumnRules } from "../../src/masking/columns.js";
import { LineageAnalyzer, type RelationTaint } from "../../src/masking/lineage.js";
import { loadSqlParser, parseStatementTrees } from "../../src/policy/sql/classify.js";

const rules = new ColumnRules([{ columns: ["customers.email", "customers.ssn", "vault.keys.*"], strategy: "redact", non_text: "null" }], "app");
const lookup = (schema: string | undefined, name: string): RelationTaint => ({
  column: (c) => rules.coversColumn(schema, name, c),
  any: rules.coversTable(schema, name),
});
const taint = (sql: string) => new LineageAnalyzer(lookup).statement(parseStatementTrees(sql)[0]);

describe("column lineage", () => {
  before(() => loadSqlParser());

  const cases: Array<[string, boolean[]]> = [
    ["select id, email from customers", [false, true]],
    ["select email as e, lower(email), upper(name), length(ssn) from customers", [true, true, false, true]],
    ["select name || ' <' || email || '>' from customers", [true]],
    ["select format('%s', ssn), concat(id, email) from customers", [true, true]],
    ["select to_jsonb(c), row_to_json(c), c from customers c", [true, true, true]],
    ["select json_agg(c), string_agg(email, ','), count(*) from customers c", [true, true, false]],
    ["select email::varchar::text, id::text from customers", [true, false]],
    ["select case when id > 1 then email else 'x' end, case when id > 1 then 'a' else 'b' end from customers", [true, false]],
    ["select (select email from customers c2 where c2.id = c.id), (select count(*) from customers) from customers c", [true, false]],
    ["with x as (select email as m, id from customers) select upper(m), id from x", [true, false]],
    ["with customers as (select 1 as email) select email from customers", [false]],
    ["select s.e from (select email as e from customers) s", [true]],
    ["select e from (select id as e from customers) s", [false]],
    ["select o.id, c.email from orders o join customers c on c.id = o.customer_id", [false, true]],
    ["select email from customers union select name from people", [true]],
    ["select k.secret from vault.keys k", [true]],
    // Unqualified, the name may resolve into vault: treated as masked (the catalog cannot say which schema the session meant).
    ["select secret from keys", [true]],
    ["insert into customers(id) values (1) returning email, id", [true, false]],
    ["select x from unnest(array(select email from customers)) as t(x)", [true]],
  ];
  for (const [sql, expected] of cases) {
    it(sql, () => assert.deepEqual(taint(sql)?.entries, expected));
  }

  it("marks star lists, whose width the analysis does not know", () => {
    const out = taint("select * from customers")!;
    assert.equal(out.hasStar, true);
    assert.equal(out.anyTainted, true);
    assert.equal(taint("select * from orders")!.anyTainted, false);
  });

  it("returns nothing for statements that return no rows", () => {
    assert.equal(taint("delete from customers where id = 1"), undefined);
    assert.equal(taint("set search_path = x"), undefined);
  });
});
