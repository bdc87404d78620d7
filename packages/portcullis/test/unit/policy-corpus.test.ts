/**
 * SQL policy corpus (SPEC §2): for every SQL text of policy-corpus.data.ts, what each statement
 * does (kinds, tables, functions) and the decision under a fixed rule set; then the engine's
 * semantics one by one (rule order, strictest outcome, same-action matching, connection and group
 * filters, `unknown`, glob patterns).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RuleConfig } from "../../src/config/schema.js";
import type { Principal } from "../../src/identity/principal.js";
import type { Decision } from "../../src/policy/decision.js";
import { PolicyEngine } from "../../src/policy/engine.js";
import { type StatementInfo, classifySql, loadSqlParser, resolveExecute } from "../../src/policy/sql/classify.js";
import { qualifiedName } from "../../src/policy/sql/dynamic-functions.js";
import { CORPUS, type CorpusEntry, type ExpectedStatement, type Outcome } from "./policy-corpus.data.js";

await loadSqlParser();

/** The fixed rule set of the corpus. Nothing else: all else is allowed, unparseable text denied. */
const RULES: RuleConfig[] = [
  { name: "no-schema-changes", when: { sql: { statements: ["ddl", "truncate", "dynamic"] } }, action: "deny" },
  {
    name: "no-server-files",
    when: { sql: { functions: ["pg_read_file", "pg_read_binary_file", "pg_ls_dir", "lo_import", "lo_export", "dblink*"] } },
    action: "deny",
  },
  { name: "unbounded-delete", when: { sql: { statements: ["update", "delete"], no_where: true } }, action: "deny" },
  { name: "no-copy-program", when: { sql: { statements: ["copy_out", "copy_in"], program: true } }, action: "deny" },
  { name: "protect-secrets", when: { sql: { tables: ["vault.*", "secrets"] } }, action: "deny" },
  { name: "no-grants", when: { sql: { statements: ["grant"] } }, action: "deny" },
  { name: "customers-delete", when: { sql: { statements: ["delete"], tables: ["customers"] } }, action: "deny" },
];

const agent: Principal = { sub: "agent", groups: ["agents"], iss: "t", exp: 4_102_444_800, run: {} };
const CONNECTION = "customers";
const engine = new PolicyEngine(RULES);

const sorted = (xs: readonly string[]) => [...new Set(xs)].sort();

function normalizeExpected(st: ExpectedStatement) {
  return { kinds: sorted(st.kinds), tables: sorted(st.tables), functions: sorted(st.functions) };
}

function normalizeActual(st: StatementInfo) {
  return { kinds: sorted(st.kinds), tables: sorted(st.tables), functions: sorted(st.functions) };
}

function outcome(d: Decision): string {
  if (d.action === "allow") return d.rule ? `allow:${d.rule}` : "allow";
  return d.action === "deny" ? (d.rule ?? "deny") : `${d.action}:${d.rule ?? ""}`;
}

/** Classifies as the Postgres policy stage does: EXECUTE folded with what the session prepared. */
function classifyInSession(sql: string, prepared: Record<string, string> = {}): StatementInfo[] {
  const session = new Map<string, StatementInfo>();
  for (const [name, text] of Object.entries(prepared)) {
    const [p, ...rest] = classifySql(text);
    assert.ok(p?.prepares && rest.length === 0, `fixture ${JSON.stringify(text)} must be one PREPARE`);
    assert.equal(p.prepares.name, name);
    session.set(name, p.prepares.info);
  }
  return classifySql(sql).map((s) => resolveExecute(s, (n) => session.get(n)));
}

function judge(sql: string, prepared?: Record<string, string>) {
  const statements = classifyInSession(sql, prepared);
  const decision = engine.decide(agent, CONNECTION, { type: "sql", statements });
  return { statements: statements.map(normalizeActual), decision: outcome(decision) };
}

function expected(x: { statements: ExpectedStatement[]; decision: Outcome }) {
  return { statements: x.statements.map(normalizeExpected), decision: x.decision as string };
}

function title(entry: CorpusEntry): string {
  const text = entry.label ?? entry.sql;
  const shown = JSON.stringify(text.length > 110 ? `${text.slice(0, 107)}...` : text);
  return `${shown} → ${entry.decision}`;
}

const corpusSize = CORPUS.reduce((n, t) => n + t.entries.length, 0);

describe(`policy corpus (${corpusSize} SQL texts)`, () => {
  it("has at least 220 entries", () => assert.ok(corpusSize >= 220, `only ${corpusSize}`));

  for (const theme of CORPUS) {
    describe(`${theme.theme}: ${theme.covers}`, () => {
      for (const entry of theme.entries) {
        it(title(entry), () => {
          const actual = judge(entry.sql, entry.prepared);
          if (entry.alt && JSON.stringify(actual) === JSON.stringify(expected(entry.alt))) return;
          assert.deepEqual(actual, expected(entry), entry.note);
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Engine semantics of SPEC §2, each with a rule set of its own.

function decide(rules: RuleConfig[], sql: string, opts: { principal?: Principal; connection?: string } = {}): Decision {
  return new PolicyEngine(rules).decide(opts.principal ?? agent, opts.connection ?? CONNECTION, { type: "sql", statements: classifySql(sql) });
}

const rule = (name: string, action: RuleConfig["action"], sql: NonNullable<RuleConfig["when"]["sql"]>, more: Partial<RuleConfig> = {}): RuleConfig =>
  ({ name, action, when: { sql }, ...more });

describe("engine semantics (SPEC §2)", () => {
  describe("first matching rule wins (rule order is the file's order)", () => {
    const allowOrders = rule("allow-orders", "allow", { tables: ["orders"] });
    const denySelects = rule("deny-selects", "deny", { statements: ["select"] });

    it("an earlier allow beats a later deny", () => {
      const d = decide([allowOrders, denySelects], "SELECT * FROM orders");
      assert.equal(d.action, "allow");
      assert.deepEqual(d.statements, [{ action: "allow", rule: "allow-orders" }]);
    });

    it("an allow by a rule names that rule in the overall decision too", () => {
      // Decision.rule: "absent when nothing matched and the default (allow) applied" — here a rule matched.
      assert.equal(decide([allowOrders, denySelects], "SELECT * FROM orders").rule, "allow-orders");
      assert.equal(decide([allowOrders], "SELECT 1; SELECT * FROM orders").rule, "allow-orders");
    });

    it("an earlier deny beats a later allow", () => {
      const d = decide([denySelects, allowOrders], "SELECT * FROM orders");
      assert.equal(d.action, "deny");
      assert.equal(d.rule, "deny-selects");
    });

    it("a rule that does not match is skipped, and no match at all allows", () => {
      assert.equal(decide([allowOrders, denySelects], "SELECT * FROM items").rule, "deny-selects");
      const d = decide([denySelects], "BEGIN");
      assert.equal(d.action, "allow");
      assert.equal(d.rule, undefined);
    });

    it("the corpus rule set: rule 3 (unbounded-delete) decides before rule 5 and rule 7", () => {
      const d = engine.decide(agent, CONNECTION, { type: "sql", statements: classifySql("DELETE FROM secrets") });
      assert.equal(d.rule, "unbounded-delete");
    });
  });

  describe("every statement is judged; the strictest outcome wins", () => {
    const rules = [
      rule("hold-selects", "approve", { statements: ["select"] }),
      rule("deny-deletes", "deny", { statements: ["delete"] }),
    ];

    it("deny over approve, whatever the order of statements", () => {
      for (const sql of ["SELECT 1; DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id = 1; SELECT 1"]) {
        const d = decide(rules, sql);
        assert.equal(d.action, "deny", sql);
        assert.equal(d.rule, "deny-deletes", sql);
      }
    });

    it("approve over allow", () => {
      const d = decide(rules, "BEGIN; SELECT 1; COMMIT");
      assert.equal(d.action, "approve");
      assert.equal(d.rule, "hold-selects");
      assert.deepEqual(d.statements, [{ action: "allow" }, { action: "approve", rule: "hold-selects" }, { action: "allow" }]);
    });

    it("each statement's own decision is reported, in order", () => {
      const d = decide(rules, "SELECT 1; DELETE FROM t WHERE id = 1; BEGIN");
      assert.deepEqual(d.statements, [
        { action: "approve", rule: "hold-selects" },
        { action: "deny", rule: "deny-deletes" },
        { action: "allow" },
      ]);
    });

    it("among equally strict outcomes the first statement's rule is reported", () => {
      const d = decide([rule("a", "deny", { statements: ["ddl"] }), rule("b", "deny", { statements: ["delete"] })], "DELETE FROM t WHERE id = 1; DROP TABLE t");
      assert.equal(d.rule, "b");
    });

    it("no statements at all (empty text) is allowed", () => {
      const d = decide(rules, "");
      assert.equal(d.action, "allow");
      assert.deepEqual(d.statements, []);
    });
  });

  describe("statements + tables + no_where hold for one and the same action", () => {
    const customersDelete = [rule("customers-delete", "deny", { statements: ["delete"], tables: ["customers"] })];

    it("a DELETE from orders that reads customers does not match", () => {
      for (const sql of [
        "DELETE FROM orders WHERE id IN (SELECT id FROM customers)",
        "DELETE FROM orders USING customers WHERE orders.cid = customers.id",
        "WITH d AS (DELETE FROM orders RETURNING id) SELECT * FROM customers, d",
        "MERGE INTO orders o USING customers c ON o.cid = c.id WHEN MATCHED THEN DELETE",
      ]) assert.equal(decide(customersDelete, sql).action, "allow", sql);
    });

    it("a DELETE from customers matches, however it is reached", () => {
      for (const sql of [
        "DELETE FROM customers WHERE id IN (SELECT id FROM orders)",
        "DELETE FROM public.customers WHERE id = 1",
        "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING *) SELECT * FROM d",
        "EXPLAIN ANALYZE DELETE FROM customers WHERE id = 1",
        "PREPARE p AS DELETE FROM customers WHERE id = $1",
        "MERGE INTO customers c USING orders o ON o.cid = c.id WHEN MATCHED THEN DELETE",
      ]) assert.equal(decide(customersDelete, sql).rule, "customers-delete", sql);
    });

    it("plain EXPLAIN of a DELETE from customers does not match (it does not run)", () => {
      assert.equal(decide(customersDelete, "EXPLAIN DELETE FROM customers WHERE id = 1").action, "allow");
    });

    it("no_where must hold for the action on the named table", () => {
      const r = [rule("wipe-customers", "deny", { statements: ["delete"], tables: ["customers"], no_where: true })];
      assert.equal(decide(r, "WITH d AS (DELETE FROM orders RETURNING *) DELETE FROM customers WHERE id IN (SELECT id FROM d)").action, "allow");
      assert.equal(decide(r, "WITH d AS (DELETE FROM customers RETURNING *) DELETE FROM orders WHERE id = 1").rule, "wipe-customers");
      assert.equal(decide(r, "DELETE FROM customers").rule, "wipe-customers");
    });

    it("a copy_out rule on a table also matches COPY (SELECT ... FROM that table)", () => {
      // What leaves through COPY (query) TO is the data of the tables the query reads.
      const r = [rule("export-customers", "deny", { statements: ["copy_out"], tables: ["customers"] })];
      assert.equal(decide(r, "COPY customers TO STDOUT").rule, "export-customers");
      assert.equal(decide(r, "COPY (SELECT * FROM customers) TO STDOUT").rule, "export-customers");
      assert.equal(decide(r, "COPY (SELECT o.* FROM orders o JOIN customers c ON c.id = o.cid) TO STDOUT").rule, "export-customers");
      assert.equal(decide(r, "COPY (SELECT * FROM orders) TO STDOUT").action, "allow");
    });
  });

  describe("connections and groups filters", () => {
    const billingOnly = rule("billing-only", "deny", { statements: ["select"] }, { connections: ["billing"] });
    const sreOnly = rule("sre-only", "deny", { statements: ["select"] }, { groups: ["sre"] });

    it("a rule for other connections does not apply", () => {
      assert.equal(decide([billingOnly], "SELECT 1").action, "allow");
      assert.equal(decide([billingOnly], "SELECT 1", { connection: "billing" }).rule, "billing-only");
    });

    it("a rule for other groups does not apply; membership of any listed group does", () => {
      assert.equal(decide([sreOnly], "SELECT 1").action, "allow");
      assert.equal(decide([sreOnly], "SELECT 1", { principal: { ...agent, groups: ["sre"] } }).rule, "sre-only");
      assert.equal(decide([sreOnly], "SELECT 1", { principal: { ...agent, groups: ["agents", "sre"] } }).rule, "sre-only");
      assert.equal(decide([sreOnly], "SELECT 1", { principal: { ...agent, groups: [] } }).action, "allow");
    });

    it("both filters must hold", () => {
      const both = rule("both", "deny", { statements: ["select"] }, { connections: ["customers"], groups: ["sre"] });
      assert.equal(decide([both], "SELECT 1").action, "allow");
      assert.equal(decide([both], "SELECT 1", { principal: { ...agent, groups: ["sre"] } }).rule, "both");
      assert.equal(decide([both], "SELECT 1", { principal: { ...agent, groups: ["sre"] }, connection: "billing" }).action, "allow");
    });

    it("a filtered-out rule lets a later rule decide", () => {
      const d = decide([sreOnly, rule("everyone", "approve", { statements: ["select"] })], "SELECT 1");
      assert.equal(d.action, "approve");
      assert.equal(d.rule, "everyone");
    });
  });

  describe("unknown (text that does not parse)", () => {
    const garbage = "SELEKT * FROM customers";

    it("with no rule about unknown it is denied by default-deny-unknown", () => {
      const d = decide([], garbage);
      assert.equal(d.action, "deny");
      assert.equal(d.rule, "default-deny-unknown");
      assert.ok(d.message);
    });

    it("an allow rule for unknown lets it through", () => {
      for (const statements of [["unknown"], ["select", "unknown"]] as const) {
        const d = decide([rule("allow-unknown", "allow", { statements: [...statements] })], garbage);
        assert.equal(d.action, "allow", statements.join());
        assert.deepEqual(d.statements, [{ action: "allow", rule: "allow-unknown" }]);
      }
    });

    it("an allow rule that does not mention unknown does not", () => {
      for (const cond of [{ statements: ["select" as const] }, { tables: ["*"] }, { functions: ["*"] }]) {
        const d = decide([rule("broad-allow", "allow", cond)], garbage);
        assert.equal(d.action, "deny", JSON.stringify(cond));
        assert.equal(d.rule, "default-deny-unknown");
      }
    });

    it("a deny or approve rule for unknown decides instead of the default", () => {
      assert.equal(decide([rule("no-garbage", "deny", { statements: ["unknown"] })], garbage).rule, "no-garbage");
      assert.equal(decide([rule("hold-garbage", "approve", { statements: ["unknown"] })], garbage).action, "approve");
    });

    it("rule order still applies: a deny for unknown before an allow for unknown wins", () => {
      const d = decide([rule("no-garbage", "deny", { statements: ["unknown"] }), rule("allow-unknown", "allow", { statements: ["unknown"] })], garbage);
      assert.equal(d.rule, "no-garbage");
    });

    it("EXECUTE of a name the session never prepared is unknown", () => {
      const statements = classifySql("EXECUTE never_prepared").map((s) => resolveExecute(s, () => undefined));
      assert.ok(statements[0]?.kinds.includes("unknown"));
      const d = new PolicyEngine([]).decide(agent, CONNECTION, { type: "sql", statements });
      assert.equal(d.rule, "default-deny-unknown");
      const allowed = new PolicyEngine([rule("allow-unknown", "allow", { statements: ["unknown"] })]).decide(agent, CONNECTION, { type: "sql", statements });
      assert.equal(allowed.action, "allow");
    });
  });

  describe("glob patterns in tables and functions", () => {
    const tables = (patterns: string[], sql: string) => decide([rule("t", "deny", { tables: patterns })], sql).action;
    const functions = (patterns: string[], sql: string) => decide([rule("f", "deny", { functions: patterns })], sql).action;

    it("`payments_*` matches payments_<anything> in any schema, not payments", () => {
      assert.equal(tables(["payments_*"], "SELECT * FROM payments_2024"), "deny");
      assert.equal(tables(["payments_*"], "SELECT * FROM billing.payments_eu"), "deny");
      assert.equal(tables(["payments_*"], `SELECT * FROM "PAYMENTS_X"`), "deny");
      assert.equal(tables(["payments_*"], "SELECT * FROM payments_"), "deny");
      assert.equal(tables(["payments_*"], "SELECT * FROM payments"), "allow");
      assert.equal(tables(["payments_*"], "SELECT * FROM old_payments_2024"), "allow");
    });

    it("`*.secrets` matches secrets in every schema, not secrets_old", () => {
      assert.equal(tables(["*.secrets"], "SELECT * FROM vault.secrets"), "deny");
      assert.equal(tables(["*.secrets"], "SELECT * FROM public.secrets"), "deny");
      assert.equal(tables(["*.secrets"], "SELECT * FROM secrets"), "deny");
      assert.equal(tables(["*.secrets"], "SELECT * FROM vault.secrets_old"), "allow");
      assert.equal(tables(["*.secrets"], "SELECT * FROM secrets_old"), "allow");
    });

    it("`schema.name` matches exactly; `?` is one character", () => {
      assert.equal(tables(["billing.pay?"], "SELECT * FROM billing.pays"), "deny");
      assert.equal(tables(["billing.pay?"], "SELECT * FROM billing.payments"), "allow");
      assert.equal(tables(["billing.pays"], "SELECT * FROM other.pays"), "allow");
    });

    it("`vault.*` matches tables of vault, not every unqualified table", () => {
      assert.equal(tables(["vault.*"], "SELECT * FROM vault.keys"), "deny");
      assert.equal(tables(["vault.*"], "SELECT * FROM public.keys"), "allow");
      assert.equal(tables(["vault.*"], "SELECT * FROM orders"), "allow");
    });

    it("function globs match however the call is spelled", () => {
      for (const sql of [
        "SELECT dblink_exec('x')",
        "SELECT public.dblink('x', 'y')",
        `SELECT "DBLink"('x', 'y')`,
        String.raw`SELECT U&"dblink\005fconnect"('x')`,
      ]) assert.equal(functions(["dblink*"], sql), "deny", sql);
      assert.equal(functions(["dblink*"], "SELECT mydblink('x')"), "allow");
      assert.equal(functions(["pg_ls_?ir"], "SELECT pg_ls_dir('.')"), "deny");
    });

    it("a schema-qualified function pattern matches qualified calls in any case", () => {
      assert.equal(functions(["pg_catalog.pg_read_*"], "SELECT pg_catalog.pg_read_file('x')"), "deny");
      assert.equal(functions(["pg_catalog.pg_read_*"], "SELECT PG_CATALOG.PG_READ_BINARY_FILE('x')"), "deny");
      assert.equal(functions(["pg_catalog.pg_read_*"], "SELECT public.pg_read_file('x')"), "allow");
    });

    it("a schema-qualified function pattern also matches the unqualified call (pg_catalog is always searched)", () => {
      // `pg_read_file('x')` resolves to pg_catalog.pg_read_file: "matched however the call is spelled".
      assert.equal(functions(["pg_catalog.pg_read_*"], "SELECT pg_read_file('x')"), "deny");
      assert.equal(functions(["pg_catalog.pg_read_file"], "SELECT * FROM pg_read_file('x')"), "deny");
    });
  });

  describe("relation names given as text (dynamic-functions.ts), read as regclass input reads them", () => {
    it("folds unquoted ASCII, keeps quoted names, takes schema and catalog qualification", () => {
      assert.deepEqual(qualifiedName("Secrets"), { name: "secrets" });
      assert.deepEqual(qualifiedName(' "Vault" . KEYS '), { schema: "Vault", name: "keys" });
      assert.deepEqual(qualifiedName('app.vault."a""b"'), { schema: "vault", name: 'a"b' });
      assert.deepEqual(qualifiedName("ÉTÉ"), { name: "ÉtÉ" }, "PostgreSQL folds ASCII letters only in UTF-8");
    });

    it("yields nothing for what is not a plain name (an OID, SQL, an empty or unterminated quote)", () => {
      for (const text of ["16384", "secrets; drop table t", "a.b.c.d", '""', '"open', "a..b", "", undefined]) {
        assert.equal(qualifiedName(text), undefined, String(text));
      }
    });

    it("a relation named by an OID or a computed value still leaves the call dynamic", () => {
      for (const sql of ["SELECT table_to_xml(16384, true, true, '')", "SELECT table_to_xml(('sec' || 'rets')::regclass, true, true, '')"]) {
        const [st] = classifySql(sql);
        assert.ok(st?.kinds.includes("dynamic"), sql);
        assert.deepEqual(st?.tables, [], sql);
      }
    });
  });
});
