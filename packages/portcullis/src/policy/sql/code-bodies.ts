/**
 * Code a statement carries: the body of a DO block or of CREATE FUNCTION/PROCEDURE, and what a
 * PL/pgSQL body runs. The classifier (policy) and the masker (what a body reads) read bodies the
 * same way through this one module, so the two can never disagree about what a body holds.
 */
import lpq from "libpg-query";

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/** The DefElem options of a DO block (`args`) or a function (`options`). */
function defElems(v: unknown): Node[] {
  return (Array.isArray(v) ? v : []).map((d) => (isNode(d) && isNode(d.DefElem) ? d.DefElem : undefined)).filter(isNode);
}

/** A string option's value: a String (DO's body), or the first of a List of them (a function's AS). */
function stringArg(d: Node | undefined): string | undefined {
  const arg = d?.arg;
  if (isNode(arg) && isNode(arg.String) && typeof arg.String.sval === "string") return arg.String.sval;
  const first = isNode(arg) && isNode(arg.List) && Array.isArray(arg.List.items) ? arg.List.items[0] : undefined;
  return isNode(first) && isNode(first.String) && typeof first.String.sval === "string" ? first.String.sval : undefined;
}

export interface CodeBody {
  /** Lower-case language: the statement's own, or PostgreSQL's default (plpgsql for DO, sql for functions). */
  language: string;
  /** The body's source text; undefined when there is none as a string (an SQL-standard body, C). */
  source?: string;
}

/** The body of a DoStmt (`args`) or CreateFunctionStmt (`options`) node. */
export function codeBody(stmt: Node, kind: "do" | "function"): CodeBody {
  const opts = defElems(kind === "do" ? stmt.args : stmt.options);
  const language = (stringArg(opts.find((d) => d.defname === "language")) ?? (kind === "do" ? "plpgsql" : "sql")).toLowerCase();
  const source = stringArg(opts.find((d) => d.defname === "as"));
  return source === undefined ? { language } : { language, source };
}

/** What a PL/pgSQL body runs. */
export interface PlpgsqlBody {
  /** Every SQL statement and expression in it, as statements (`x := e` and bare expressions as `SELECT e`). */
  sql: string[];
  /** The expressions whose value an EXECUTE (or FOR/RETURN QUERY/OPEN ... EXECUTE) runs as SQL. */
  executed: Node[];
}

/** PL/pgSQL statements that run SQL text computed at run time, and the field holding that text. */
const DYNAMIC_PLPGSQL: Record<string, string> = {
  PLpgSQL_stmt_dynexecute: "query",
  PLpgSQL_stmt_dynfors: "query",
  PLpgSQL_stmt_return_query: "dynquery",
  PLpgSQL_stmt_open: "dynquery",
};

/**
 * A PL/pgSQL body read by PostgreSQL's own PL/pgSQL parser. `text` is a whole CREATE FUNCTION, or a
 * DO block (see `doBlockText`). undefined when it does not parse.
 */
export function readPlpgsql(text: string): PlpgsqlBody | undefined {
  let tree: unknown;
  try {
    tree = lpq.parsePlPgSQLSync(text);
  } catch {
    return undefined;
  }
  const body: PlpgsqlBody = { sql: [], executed: [] };
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(visit); return; }
    if (!isNode(v)) return;
    for (const [k, inner] of Object.entries(v)) {
      const field = DYNAMIC_PLPGSQL[k];
      if (field && isNode(inner) && isNode(inner[field])) body.executed.push(inner[field] as Node);
      if (k === "PLpgSQL_expr" && isNode(inner) && typeof inner.query === "string") {
        // parseMode 0: a statement; 3-5: an assignment `target := expr`; otherwise an expression.
        const mode = typeof inner.parseMode === "number" ? inner.parseMode : 0;
        body.sql.push(mode === 0 ? inner.query : `SELECT ${mode >= 3 ? inner.query.slice(inner.query.indexOf(":=") + 2) : inner.query}`);
      }
      visit(inner);
    }
  };
  visit(tree);
  return body;
}

/** A DO block's source as the PL/pgSQL parser takes it. */
export const doBlockText = (source: string): string => `DO $portcullis$${source}$portcullis$`;
