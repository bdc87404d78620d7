/**
 * Masked data may only leave as masked output. On a connection with column rules, a statement that
 * reads a masked column (directly, through a view, a star or a whole-row reference) and would also
 * write or store something (INSERT, UPDATE, MERGE, COPY FROM, CREATE TABLE AS / SELECT INTO, a
 * procedure call, or a function that keeps a value: set_config, large objects, NOTIFY, dblink) is
 * refused before it runs: otherwise the clear value could be put somewhere unmasked (another table,
 * a setting, a large object) and read back from there.
 *
 * This is a rule, not a list of routes, with one deliberate coarseness: a masked column used only to
 * filter a write (`UPDATE t SET x = 1 WHERE secret = 'a'`) is refused too, because the gateway does
 * not tell a filter from a value. Writes that do not read a masked column are untouched.
 */
import type { StatementInfo } from "../../policy/sql/classify.js";
import type { StatementKind } from "../../policy/sql/kinds.js";
import type { ResultPlanner } from "./result-plan.js";

/** `dynamic`: a DO block or SQL run from a string may do any of the others. */
const STORE_KINDS = new Set<StatementKind>(["insert", "update", "merge", "copy_in", "ddl", "call", "dynamic"]);
/** Functions that keep a value where a later statement can read it back. */
const STORE_FUNCTIONS = /^(pg_catalog\.)?(set_config|lo_from_bytea|lo_put|lowrite|lo_import|lo_create|pg_notify|dblink.*|pg_logical_emit_message)$/;

/** Whether the statements could store something at all (cheap, from the classification alone). */
export function couldStore(infos: readonly StatementInfo[]): boolean {
  return infos.some((s) => s.kinds.some((k) => STORE_KINDS.has(k)) || s.functions.some((f) => STORE_FUNCTIONS.test(f)));
}

export const MASKED_STORE_RULE = "masked-data-store";
export const MASKED_STORE_MESSAGE = "a statement that reads a masked column cannot write or store data (masked data may only leave as masked output)";

/**
 * The guard the policy stage consults: undefined when the statement may run, or a promise of the
 * verdict (true: refuse). Unanalysable text that could store is refused.
 */
export function maskedStoreGuard(planner: ResultPlanner): (sql: string, infos: readonly StatementInfo[]) => Promise<boolean> | undefined {
  return (sql, infos) => {
    if (!couldStore(infos)) return undefined;
    return planner.readsMaskedColumn(sql, storesSomething).then((reads) => reads !== false);
  };
}

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Statements that keep code or change names: a DO block (its variables carry values to any store the
 * tree does not show), a function (its body runs later, and returns or stores what it reads), a
 * trigger or rule (run on later writes, with whole rows), a rename or schema move (column rules match
 * by name), an ALTER TABLE (a generated column or a column's new type computes from masked ones, a
 * detached partition takes rows under another name). result-plan.ts looks into their bodies and at the relation they attach to.
 */
const KEEPS_CODE = new Set(["DoStmt", "CreateFunctionStmt", "CreateTrigStmt", "RuleStmt", "RenameStmt", "AlterObjectSchemaStmt", "AlterTableStmt"]);

/**
 * Whether a statement's tree writes or keeps a value anywhere in it (a CTE, a PREPARE, an EXPLAIN
 * ANALYZE). Views and materialized views do not count: what they derive is masked when read, by
 * lineage through their definition.
 */
export function storesSomething(tree: unknown): boolean {
  let found = false;
  const visit = (v: unknown): void => {
    if (found) return;
    if (Array.isArray(v)) { v.forEach(visit); return; }
    if (!isNode(v)) return;
    for (const [k, inner] of Object.entries(v)) {
      if (!isNode(inner)) { visit(inner); continue; }
      if (k === "InsertStmt" || k === "UpdateStmt" || k === "MergeStmt" || k === "CallStmt" || KEEPS_CODE.has(k)) found = true;
      else if (k === "CopyStmt" && inner.is_from === true) found = true;
      else if (k === "CreateTableAsStmt" && inner.objtype !== "OBJECT_MATVIEW") found = true;
      else if (k === "SelectStmt" && inner.intoClause !== undefined) found = true;
      else if (k === "FuncCall" && Array.isArray(inner.funcname)) {
        const name = inner.funcname.map((n) => (isNode(n) && isNode(n.String) ? String(n.String.sval) : "")).join(".").toLowerCase();
        if (STORE_FUNCTIONS.test(name)) found = true;
      }
      if (found) return;
      visit(inner);
    }
  };
  visit(tree);
  return found;
}
