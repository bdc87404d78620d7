/**
 * Classification of SQL text with PostgreSQL's own parser (libpg-query): for each statement, the
 * kinds of work it does, the actions (kind + table) it performs, and the functions it calls,
 * wherever they sit in the tree (CTEs, subqueries, EXPLAIN ANALYZE, CREATE TABLE AS, PREPARE,
 * rules, DO blocks). Pure and deterministic; text that does not parse is `unknown`.
 *
 * What it cannot see: SQL built at run time inside the database (EXECUTE of a string in PL/pgSQL,
 * the body of an existing function called by name, triggers, operators and casts that call
 * functions). Those are reported as `dynamic` where the syntax shows them (a DO block, a call of a
 * function that runs SQL text, a new function whose body does), and otherwise are the database's
 * own privileges' job.
 */
import lpq from "libpg-query";
import { type Node, isObj, strings, unwrap } from "./ast.js";
import { codeBody, doBlockText, readPlpgsql } from "./code-bodies.js";
import { type CallArgs, type DynamicCall, type Literal, dynamicCall, impliedCalls } from "./dynamic-functions.js";
import { SIMPLE_KIND, type StatementKind } from "./kinds.js";
import { setConfigKeepsLexing, setKeepsLexing } from "./lexer-settings.js";
import type { SearchPathChange } from "./search-path.js";

export interface TableName {
  schema?: string;
  name: string;
}

/** One thing a statement does: a kind, and the table it acts on when there is one. */
export interface SqlAction {
  kind: StatementKind;
  table?: TableName;
  /** UPDATE/DELETE without a WHERE clause (or with one that references nothing: `WHERE 1=1`). */
  noWhere?: boolean;
  /** COPY TO/FROM PROGRAM. */
  program?: boolean;
}

export interface StatementInfo {
  kinds: StatementKind[];
  actions: SqlAction[];
  /** Every table the statement touches, as written (`schema.name` when qualified). */
  tables: string[];
  /** Every function called, lower-cased, schema-qualified when written so. */
  functions: string[];
  /** PREPARE name AS ...: the prepared statement's own classification, for a later EXECUTE. */
  prepares?: { name: string; info: StatementInfo };
  /** EXECUTE name: resolved per session (see resolveExecute). */
  executes?: string;
  /** EXPLAIN EXECUTE name: the prepared statement's tables, as explain actions. */
  explainsExecute?: string;
  /** FETCH or MOVE from a cursor: its query runs (further) now. */
  fetches?: string;
  /** DECLARE name CURSOR FOR ...: a portal the session may later Execute; WITH HOLD outlives its transaction. */
  declares?: { name: string; info: StatementInfo; holdable: boolean };
  /** DEALLOCATE name, or "*" for DEALLOCATE ALL. */
  deallocates?: string;
  /** CLOSE name, or "*" for CLOSE ALL. */
  closes?: string;
  /** DISCARD ALL: every prepared statement and portal of the session is gone. */
  discardsAll?: boolean;
  /** Changes (or may change) a setting that alters how SQL text is read: always refused (lexer-settings.ts). */
  changesLexing?: boolean;
  /** A change of the session's search_path: the new list, back to the session's start, or not knowable. */
  setsSearchPath?: SearchPathChange;
  /** Why the statement is `unknown`, when it is. */
  error?: string;
  /**
   * When the text does not parse: the parser's message and where (a 0-based character index). The
   * parser is PostgreSQL's own, so this is what PostgreSQL would answer (42601).
   */
  syntaxError?: { message: string; cursor: number };
}

let loaded: Promise<void> | undefined;
/** The parser is WebAssembly; it must be loaded once before classify() is called. */
export function loadSqlParser(): Promise<void> {
  loaded ??= lpq.loadModule();
  return loaded;
}

/** pg_settings by name (unqualified, or in pg_catalog). */
function isPgSettings(t: TableName): boolean {
  return t.name.toLowerCase() === "pg_settings" && (t.schema === undefined || t.schema.toLowerCase() === "pg_catalog");
}

function rangeVarName(rv: Node): TableName {
  return typeof rv.schemaname === "string" ? { schema: rv.schemaname, name: String(rv.relname) } : { name: String(rv.relname) };
}

export function tableText(t: TableName): string {
  return t.schema ? `${t.schema}.${t.name}` : t.name;
}

/**
 * True when a condition references no column anywhere (not even in a subquery): it cannot tell
 * rows apart, so `WHERE true`, `WHERE 1=1`, `WHERE (SELECT true)`, `WHERE now() IS NOT NULL` or
 * `WHERE $1` filter nothing. `WHERE CURRENT OF cursor` names one row.
 */
function referencesNoColumn(expr: unknown): boolean {
  let constant = true;
  const visit = (v: unknown): void => {
    if (!constant) return;
    if (Array.isArray(v)) { v.forEach(visit); return; }
    if (!isObj(v)) return;
    for (const [k, inner] of Object.entries(v)) {
      if (k === "ColumnRef" || k === "CurrentOfExpr") { constant = false; return; }
      visit(inner);
    }
  };
  visit(expr);
  return constant;
}

/** The value list of `SET search_path = a, "B"` as PostgreSQL will read it. */
function searchPathOf(n: Node): StatementInfo["setsSearchPath"] {
  if (n.kind === "VAR_RESET" || n.kind === "VAR_SET_DEFAULT" || n.kind === "VAR_RESET_ALL") return "reset";
  // SET LOCAL lasts until the transaction ends, which the gateway does not follow: assume anything.
  if (n.kind !== "VAR_SET_VALUE" || n.is_local === true || !Array.isArray(n.args)) return "unknown";
  const names = n.args.map((a) => unwrap(a)?.[1]).map((c) => (isObj(c?.sval) ? c.sval.sval : undefined));
  return names.every((x): x is string => typeof x === "string") ? names.flatMap((x) => x.split(",").map((p) => p.trim()).filter(Boolean)) : "unknown";
}

/** The value of a string literal, also under a cast (`'x'::text`); undefined for anything else. */
function literalOf(v: unknown): Literal {
  const w = unwrap(v);
  if (!w) return undefined;
  if (w[0] === "TypeCast") return literalOf(w[1].arg);
  return w[0] === "A_Const" && isObj(w[1].sval) && typeof w[1].sval.sval === "string" ? w[1].sval.sval : undefined;
}

/** A FuncCall's arguments, positional and named (`name => value`), as dynamic-functions.ts reads them. */
function callArgs(args: unknown): CallArgs {
  const list = Array.isArray(args) ? args : [];
  const positional: Literal[] = [];
  const named = new Map<string, Literal>();
  for (const a of list) {
    const w = unwrap(a);
    if (w?.[0] === "NamedArgExpr" && typeof w[1].name === "string") named.set(w[1].name.toLowerCase(), literalOf(w[1].arg));
    else positional.push(literalOf(a));
  }
  return {
    count: list.length,
    literal: (position, name) => (position < positional.length ? positional[position] : name !== undefined ? named.get(name) : undefined),
    all: () => [...positional, ...named.values()].filter((x): x is string => x !== undefined),
  };
}

/** The one argument of a call in attribute notation, `(arg).name`. */
const oneArg = (arg: Literal): CallArgs => ({ count: 1, literal: (p) => (p === 0 ? arg : undefined), all: () => (arg === undefined ? [] : [arg]) });

/**
 * DDL options whose value names a function that PostgreSQL will call later, implicitly (an
 * aggregate's state function, an operator's procedure, a type's I/O, a wrapper's handler).
 */
const FUNCTION_OPTIONS = new Set([
  "sfunc", "finalfunc", "combinefunc", "serialfunc", "deserialfunc", "msfunc", "minvfunc", "mfinalfunc",
  "procedure", "function", "restrict", "join", "input", "output", "receive", "send", "typmod_in", "typmod_out",
  "analyze", "subscript", "canonical", "subtype_diff", "handler", "validator", "start", "gettoken", "end",
  "headline", "lextypes", "init", "lexize", "support",
]);

/**
 * Fields holding the name of a function wired into a later, implicit call (a name list, or a
 * function with its signature). A function merely named (GRANT EXECUTE, ALTER or DROP FUNCTION,
 * COMMENT) is not listed: nothing will call it that would not have before.
 */
const FUNCTION_NAME_FIELDS: Record<string, string[]> = {
  CreateTrigStmt: ["funcname"],
  CreateEventTrigStmt: ["funcname"],
  CreatePLangStmt: ["plhandler", "plinline", "plvalidator"],
  CreateAmStmt: ["handler_name"],
  CreateConversionStmt: ["func_name"],
  CreateCastStmt: ["func"],
  CreateTransformStmt: ["fromsql", "tosql"],
  CreateOpClassItem: ["name"],
};

/**
 * DefineStmt options that name a function called later (aggregate transition and final functions,
 * operator procedures and estimators, type I/O), written as a type name: `SFUNC = set_config`.
 */
const DEFINED_FUNCTION_OPTIONS = new Set([
  "sfunc", "finalfunc", "combinefunc", "serialfunc", "deserialfunc", "msfunc", "minvfunc", "mfinalfunc",
  "function", "procedure", "restrict", "join", "input", "output", "receive", "send", "typmod_in", "typmod_out", "analyze", "subscript",
]);

/** A function name from a name list or an ObjectWithArgs (wrapped or not). */
function functionNameParts(v: unknown): string[] {
  if (Array.isArray(v)) return strings(v);
  const inner = unwrap(v)?.[1] ?? v;
  return isObj(inner) ? strings(inner.objname) : [];
}

/** Deep trees beyond this are refused as `unknown` rather than walked (PostgreSQL itself limits stack depth). */
const MAX_DEPTH = 1000;

const TABLE_DROP_TYPES = new Set(["OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE", "OBJECT_SEQUENCE", "OBJECT_INDEX"]);

/** Collects kinds, actions and functions over one top-level statement's tree. */
class Collector {
  readonly kinds = new Set<StatementKind>();
  readonly actions: SqlAction[] = [];
  readonly functions = new Set<string>();
  info: Partial<StatementInfo> = {};
  /** CTE names in scope: an unqualified reference to one is not a table. */
  private cteScopes: Set<string>[] = [];
  /** Under EXPLAIN without ANALYZE the inner statement does not run: its work is `explain`. */
  private explainOnly = 0;
  /** Kind given to tables met outside any statement-specific handling (reads, or DDL objects). */
  private readKind: StatementKind = "select";
  /** Inside a function's SET clause (CREATE/ALTER FUNCTION): a setting there applies while the function runs, not to the session. */
  private functionSettings = 0;
  private depth = 0;

  /** @param text the statement's own SQL text (function bodies are re-parsed from it) */
  constructor(private text = "") {}

  private addKind(kind: StatementKind): void {
    this.kinds.add(this.explainOnly > 0 ? "explain" : kind);
  }

  private addAction(a: SqlAction): void {
    this.actions.push(this.explainOnly > 0 ? { ...a, kind: "explain" } : a);
  }

  /**
   * A function wired into later, implicit calls (a trigger, a cast, an aggregate's SFUNC): its
   * arguments are not this statement's to read, so a set_config there may set anything.
   */
  private wireFunction(names: string[]): void {
    const name = this.addFunction(names);
    if (name === "set_config" || name === "pg_catalog.set_config") this.info.changesLexing = true;
  }

  private addFunction(names: string[]): string {
    const name = names.map((s) => s.toLowerCase()).join(".");
    if (name) this.functions.add(name);
    // A built-in wrapper's body calls another function (pg_sleep_for calls pg_sleep): both are called.
    for (const callee of impliedCalls(name)) this.functions.add(callee);
    return name;
  }

  /**
   * Walks every statement of SQL text that runs as part of this one (a literal handed to a function
   * that runs it, a PL/pgSQL statement, a function body), each with its own text, so a CREATE
   * FUNCTION among them is re-parsed from its own text.
   */
  private walkSql(sql: string): void {
    const outer = this.text;
    try {
      for (const { stmt, text } of parseStatementsWithText(sql)) {
        this.text = text;
        this.walk(stmt);
      }
    } finally {
      this.text = outer;
    }
  }

  /**
   * What a call that runs SQL or reads relations by name will do: `dynamic` work, plus the work of
   * whatever its literal arguments show. That SQL runs on its own, outside this statement's CTEs.
   */
  private dynamic(d: DynamicCall): void {
    if (d.dynamic) {
      this.addKind("dynamic");
      this.addAction({ kind: "dynamic" });
    }
    for (const table of d.relations) this.addAction({ kind: "select", table });
    if (d.sql.length === 0) return;
    const scopes = this.cteScopes;
    this.cteScopes = [];
    try {
      this.withReadKind("select", () => { for (const sql of d.sql) this.walkSql(sql); });
    } finally {
      this.cteScopes = scopes;
    }
  }

  /**
   * `x.name`, `(expr).name`: PostgreSQL reads a field selection it cannot resolve as a column or a
   * composite field as the call `name(x)` (attribute notation). Which one it is depends on the
   * catalog, so every such name counts as a possible call of an unqualified function.
   */
  private attributeCall(name: string, arg: Literal): void {
    const fn = this.addFunction([name]);
    const d = dynamicCall(fn, oneArg(arg));
    if (d) this.dynamic(d);
  }

  private isCte(rv: Node): boolean {
    if (typeof rv.schemaname === "string") return false;
    return this.cteScopes.some((s) => s.has(String(rv.relname)));
  }

  private inFunctionSettings(fn: () => void): void {
    this.functionSettings++;
    try { fn(); } finally { this.functionSettings--; }
  }

  private withReadKind(kind: StatementKind, fn: () => void): void {
    const prev = this.readKind;
    this.readKind = kind;
    try { fn(); } finally { this.readKind = prev; }
  }

  /**
   * Walks a view's query. A view over pg_settings is updatable, and each row written through it is a
   * set_config: settings would change where the gateway cannot see it (UPDATE v SET setting = ...).
   */
  private definesView(walkQuery: () => void): void {
    const before = this.actions.length;
    walkQuery();
    if (this.actions.slice(before).some((a) => a.table && isPgSettings(a.table))) {
      this.info.changesLexing = true;
      this.info.setsSearchPath = "unknown";
    }
  }

  /** Visits the given fields of a node, skipping `skip`. */
  private walkFields(node: Node, skip: string[] = []): void {
    for (const [k, v] of Object.entries(node)) if (!skip.includes(k)) this.walk(v);
  }

  /** The relation a statement writes or defines: always a real table, never a CTE of the same name. */
  private target(kind: StatementKind, rv: unknown, extra: Partial<SqlAction> = {}): void {
    const inner = unwrap(rv)?.[1] ?? rv;
    if (isObj(inner) && typeof inner.relname === "string") {
      const table = rangeVarName(inner);
      // A write to pg_settings is a set_config of every row it touches: lexer settings and the path included.
      if (kind !== "ddl" && isPgSettings(table)) {
        this.info.changesLexing = true;
        this.info.setsSearchPath = "unknown";
      }
      this.addAction({ kind, table, ...extra });
    } else {
      this.addAction({ kind, ...extra });
    }
  }

  /**
   * Runs `fn` with the CTEs of a WITH clause in scope. Without RECURSIVE a CTE's body sees only the
   * CTEs before it: `WITH secrets AS (SELECT * FROM secrets)` reads the real table.
   */
  private withCtes(withClause: unknown, fn: () => void): void {
    const ctes = (isObj(withClause) && Array.isArray(withClause.ctes) ? withClause.ctes : [])
      .map((c) => unwrap(c)?.[1])
      .filter((c): c is Node => isObj(c) && typeof c.ctename === "string");
    const recursive = isObj(withClause) && withClause.recursive === true;
    const names = new Set<string>(recursive ? ctes.map((c) => String(c.ctename)) : []);
    this.cteScopes.push(names);
    try {
      for (const c of ctes) {
        this.walk(c.ctequery);
        names.add(String(c.ctename));
      }
      fn();
    } finally {
      this.cteScopes.pop();
    }
  }

  walk(v: unknown): void {
    if (Array.isArray(v)) { for (const item of v) this.walk(item); return; }
    if (!isObj(v)) return;
    if (++this.depth > MAX_DEPTH) throw new TooComplex();
    try {
      this.visit(v);
    } finally {
      this.depth--;
    }
  }

  private visit(v: Node): void {
    const w = unwrap(v);
    if (w) { this.node(w[0], w[1]); return; }
    // Unwrapped nodes appear in some fields (relation, rel, funccall): recognise them by shape.
    if (typeof v.relname === "string") { this.node("RangeVar", v); return; }
    if (Array.isArray(v.funcname) && "funcformat" in v) { this.node("FuncCall", v); return; }
    this.walkFields(v);
  }

  node(type: string, n: Node): void {
    switch (type) {
      case "RangeVar":
        if (!this.isCte(n)) this.addAction({ kind: this.readKind, table: rangeVarName(n) });
        return;
      case "FuncCall": {
        const name = this.addFunction(strings(n.funcname));
        // set_config('search_path', ...) can set anything, computed at run time.
        if (name.endsWith("set_config")) {
          this.info.setsSearchPath = "unknown";
          if (!setConfigKeepsLexing(n.args)) this.info.changesLexing = true;
        }
        // These run SQL text, or read relations, named by a value (dynamic-functions.ts).
        const d = dynamicCall(name.slice(name.lastIndexOf(".") + 1), callArgs(n.args));
        if (d) this.dynamic(d);
        this.walkFields(n, ["funcname"]);
        return;
      }
      case "ColumnRef": {
        // a.f, s.a.f, c.s.a.f: the last name may be a function called on the row `a`.
        const fields = Array.isArray(n.fields) ? n.fields : [];
        const last = unwrap(fields[fields.length - 1]);
        if (fields.length >= 2 && last?.[0] === "String" && typeof last[1].sval === "string") this.attributeCall(last[1].sval, undefined);
        return;
      }
      case "A_Indirection": {
        // (expr).f: a call f(expr) unless expr is a composite with a field f; the first name
        // applies to expr itself, so a literal there is the call's argument.
        const steps = Array.isArray(n.indirection) ? n.indirection : [];
        steps.forEach((step, i) => {
          const w = unwrap(step);
          if (w?.[0] === "String" && typeof w[1].sval === "string") this.attributeCall(w[1].sval, i === 0 ? literalOf(n.arg) : undefined);
        });
        this.walkFields(n);
        return;
      }
      case "RangeTableSample":
        // TABLESAMPLE method(...): the method is a handler function PostgreSQL calls.
        this.addFunction(strings(n.method));
        this.walkFields(n, ["method"]);
        return;
      case "DefElem": {
        const fn = typeof n.defname === "string" && FUNCTION_OPTIONS.has(n.defname.toLowerCase()) ? unwrap(n.arg) : undefined;
        if (fn?.[0] === "TypeName") this.addFunction(strings(fn[1].names));
        else if (fn?.[0] === "List") this.addFunction(strings(fn[1].items));
        this.walkFields(n);
        return;
      }
      case "SelectStmt":
        this.addKind("select");
        this.withCtes(n.withClause, () => this.withReadKind("select", () => {
          if (isObj(n.intoClause)) {
            this.addKind("ddl");
            this.target("ddl", n.intoClause.rel);
          }
          if (!n.fromClause && !n.larg && !n.valuesLists) this.addAction({ kind: "select" });
          this.walkFields(n, ["withClause", "intoClause"]);
        }));
        return;
      case "InsertStmt":
      case "UpdateStmt":
      case "DeleteStmt": {
        const kind = type === "InsertStmt" ? "insert" : type === "UpdateStmt" ? "update" : "delete";
        this.addKind(kind);
        this.withCtes(n.withClause, () => this.withReadKind("select", () => {
          const noWhere = kind === "insert" ? undefined : !n.whereClause || referencesNoColumn(n.whereClause);
          this.target(kind, n.relation, noWhere === undefined ? {} : { noWhere });
          // INSERT ... ON CONFLICT DO UPDATE updates the rows it collides with.
          if (isObj(n.onConflictClause) && n.onConflictClause.action === "ONCONFLICT_UPDATE") {
            this.addKind("update");
            this.target("update", n.relation);
          }
          this.walkFields(n, ["withClause", "relation"]);
        }));
        return;
      }
      case "MergeStmt": {
        this.addKind("merge");
        this.withCtes(n.withClause, () => this.withReadKind("select", () => {
          this.target("merge", n.relation);
          for (const clause of Array.isArray(n.mergeWhenClauses) ? n.mergeWhenClauses : []) {
            const c = unwrap(clause)?.[1];
            const cmd = c?.commandType;
            const kind = cmd === "CMD_UPDATE" ? "update" : cmd === "CMD_DELETE" ? "delete" : cmd === "CMD_INSERT" ? "insert" : undefined;
            if (!kind) continue;
            this.addKind(kind);
            // ON true with an unconditional WHEN touches every row, as a DELETE without WHERE would.
            const unbounded = kind !== "insert" && referencesNoColumn(n.joinCondition) && !c?.condition;
            this.target(kind, n.relation, unbounded ? { noWhere: true } : {});
          }
          this.walkFields(n, ["withClause", "relation"]);
        }));
        return;
      }
      case "CopyStmt": {
        const kind = n.is_from ? "copy_in" : "copy_out";
        this.addKind(kind);
        const program = n.is_program === true;
        if (n.relation) this.target(kind, n.relation, program ? { program } : {});
        // COPY FROM ... WHERE: evaluated for every incoming row; its calls and reads are this statement's.
        this.withReadKind("select", () => this.walk(n.whereClause));
        const before = this.actions.length;
        this.walk(n.query);
        if (!n.relation) {
          // COPY (SELECT ... FROM customers) TO exports customers: one copy action per table read.
          const tables = this.actions.slice(before).flatMap((a) => (a.table && a.kind === "select" ? [a.table] : []));
          if (tables.length === 0) this.addAction({ kind, ...(program ? { program } : {}) });
          for (const table of tables) this.addAction({ kind, table, ...(program ? { program } : {}) });
        }
        return;
      }
      case "TruncateStmt":
        this.addKind("truncate");
        for (const rv of Array.isArray(n.relations) ? n.relations : []) this.target("truncate", rv);
        return;
      case "ExplainStmt": {
        this.addKind("explain");
        const analyze = Array.isArray(n.options) && n.options.some((o) => {
          const d = unwrap(o)?.[1];
          if (!d || d.defname !== "analyze") return false;
          // EXPLAIN (ANALYZE false | off | 0) does not run the statement.
          const arg = unwrap(d.arg);
          if (!arg) return true;
          const [type, value] = arg;
          if (type === "Integer") return (value.ival ?? 0) !== 0;
          if (type === "Boolean") return value.boolval === true;
          if (type === "String" && typeof value.sval === "string") return !["false", "off", "0", "no", "f", "n"].includes(value.sval.toLowerCase());
          return true;
        });
        if (analyze) this.walk(n.query);
        else { this.explainOnly++; try { this.walk(n.query); } finally { this.explainOnly--; } }
        return;
      }
      case "PrepareStmt": {
        this.addKind("prepare");
        this.walk(n.query);
        if (typeof n.name === "string") this.info.prepares = { name: n.name, info: classifyTree(n.query, this.text) };
        return;
      }
      case "ExecuteStmt":
        this.addKind("execute");
        this.addAction({ kind: "execute" });
        // EXPLAIN EXECUTE plans without running: its tables count, as `explain` work only.
        if (typeof n.name === "string") {
          if (this.explainOnly === 0) this.info.executes = n.name;
          else this.info.explainsExecute = n.name;
        }
        this.walkFields(n, ["name"]);
        return;
      case "DeallocateStmt":
        this.addKind("utility");
        this.info.deallocates = typeof n.name === "string" ? n.name : "*";
        return;
      case "DeclareCursorStmt":
        this.walk(n.query);
        // CURSOR_OPT_HOLD (0x20): WITH HOLD.
        if (typeof n.portalname === "string") this.info.declares = { name: n.portalname, info: classifyTree(n.query, this.text), holdable: (Number(n.options) & 0x20) !== 0 };
        return;
      case "CreateTableAsStmt":
        this.addKind("ddl");
        if (isObj(n.into)) this.target("ddl", n.into.rel);
        this.walk(n.query);
        return;
      case "ViewStmt": {
        this.addKind("ddl");
        this.target("ddl", n.view);
        // The view's query reads these tables whenever the view is used.
        this.definesView(() => this.walk(n.query));
        return;
      }
      case "RuleStmt":
        this.addKind("ddl");
        this.target("ddl", n.relation);
        // A rule's actions run on every matching event from now on: they count as work of this statement.
        // An ON SELECT rule ("_RETURN") turns an empty table into a view (PostgreSQL 15 still allows
        // it): a view by another spelling, judged as one.
        if (n.event === "CMD_SELECT") this.definesView(() => this.walk(n.actions));
        else this.walk(n.actions);
        this.walk(n.whereClause);
        return;
      case "CreateFunctionStmt":
        this.addKind("ddl");
        this.addAction({ kind: "ddl" });
        this.walkFunctionBody(n);
        // SUPPORT names a planner support function, called whenever the new function is planned.
        this.inFunctionSettings(() => this.walk(n.options));
        return;
      case "AlterFunctionStmt":
        this.addKind("ddl");
        this.addAction({ kind: "ddl" });
        this.inFunctionSettings(() => this.walkFields(n));
        return;
      // Defaults for later sessions (of a role, a database, the server): one of a lexer setting would
      // make them read SQL differently, or be refused, so it is protected like a SET.
      case "AlterRoleSetStmt":
      case "AlterDatabaseSetStmt":
      case "AlterSystemStmt": {
        this.addKind("ddl");
        this.addAction({ kind: "ddl" });
        const set = isObj(n.setstmt) ? n.setstmt : undefined;
        if (set && !setKeepsLexing(set)) this.info.changesLexing = true;
        return;
      }
      case "DoStmt":
        this.addKind("dynamic");
        this.addAction({ kind: "dynamic" });
        this.walkDoBody(n);
        return;
      case "CallStmt":
        this.addKind("call");
        this.addAction({ kind: "call" });
        this.walk(n.funccall);
        return;
      case "VariableSetStmt": {
        const name = typeof n.name === "string" ? n.name.toLowerCase() : "";
        const kind = name === "transaction" ? "transaction" : "set";
        this.addKind(kind);
        this.addAction({ kind });
        if (!setKeepsLexing(n)) this.info.changesLexing = true;
        if (this.functionSettings > 0) return;
        if (name === "search_path" || n.kind === "VAR_RESET_ALL") this.info.setsSearchPath = searchPathOf(n);
        // `$user` on the path is the current role: the gateway keeps the connection's user for it.
        else if (name === "role" || name === "session_authorization") this.info.setsSearchPath = "unknown";
        return;
      }
      case "DiscardStmt":
        this.addKind("utility");
        this.addAction({ kind: "utility" });
        // Only DISCARD ALL resets settings; DISCARD PLANS, SEQUENCES and TEMP leave the path alone.
        if (n.target === "DISCARD_ALL") {
          this.info.setsSearchPath = "reset";
          this.info.discardsAll = true;
        }
        return;
      case "FetchStmt":
        this.addKind("utility");
        this.addAction({ kind: "utility" });
        if (typeof n.portalname === "string") this.info.fetches = n.portalname;
        return;
      case "ClosePortalStmt":
        this.addKind("utility");
        this.addAction({ kind: "utility" });
        this.info.closes = typeof n.portalname === "string" ? n.portalname : "*";
        return;
      case "DropStmt": {
        this.addKind("ddl");
        const tableLike = typeof n.removeType === "string" && TABLE_DROP_TYPES.has(n.removeType);
        let named = false;
        for (const obj of Array.isArray(n.objects) ? n.objects : []) {
          const names = strings(unwrap(obj)?.[1]?.items);
          if (tableLike && names.length > 0) {
            const name = names[names.length - 1]!;
            this.addAction({ kind: "ddl", table: names.length > 1 ? { schema: names[names.length - 2]!, name } : { name } });
            named = true;
          }
        }
        if (!named) this.addAction({ kind: "ddl" });
        return;
      }
      default: {
        const simple = SIMPLE_KIND[type];
        const kind: StatementKind | undefined = simple ?? (type.endsWith("Stmt") ? "ddl" : undefined);
        for (const field of FUNCTION_NAME_FIELDS[type] ?? []) this.wireFunction(functionNameParts(n[field]));
        if (type === "DefineStmt" && Array.isArray(n.definition)) {
          for (const d of n.definition) {
            const opt = unwrap(d)?.[1];
            const arg = unwrap(opt?.arg);
            if (typeof opt?.defname === "string" && DEFINED_FUNCTION_OPTIONS.has(opt.defname.toLowerCase()) && arg?.[0] === "TypeName") this.wireFunction(strings(arg[1].names));
          }
        }
        if (!kind) { this.walkFields(n); return; }
        this.addKind(kind);
        const before = this.actions.length;
        this.withReadKind(kind, () => this.walkFields(n));
        if (this.actions.length === before) this.addAction({ kind });
      }
    }
  }

  /** SQL inside a DO block runs now: its statements are classified as part of this one. */
  private walkDoBody(n: Node): void {
    const { language, source } = codeBody(n, "do");
    if (source === undefined || language !== "plpgsql") return;
    this.walkPlpgsql(doBlockText(source));
  }

  /**
   * A function body runs later, when called: its kinds are not this statement's, but the functions
   * it calls are recorded, so wrapping pg_read_file in a new function does not hide it. A body that
   * runs SQL text (PL/pgSQL EXECUTE, a call of query_to_xml and the like), or that the gateway
   * cannot read (a language other than SQL and PL/pgSQL), calls what only its run will show: the
   * definition is `dynamic`.
   */
  private walkFunctionBody(n: Node): void {
    const { language: lang, source: src } = codeBody(n, "function");
    const inner = new Collector(this.text);
    // Parameter defaults are evaluated at each call, like the body.
    inner.walk(n.parameters);
    if (n.sql_body) inner.walk(n.sql_body);
    else if (lang === "sql") {
      if (typeof src === "string") inner.walkSql(src);
    } else if (lang === "plpgsql") {
      // The PL/pgSQL parser takes the whole CREATE FUNCTION (a DO wrapper would refuse `RETURN value`).
      inner.walkPlpgsql(this.text);
    } else {
      inner.addKind("dynamic");
    }
    for (const f of inner.functions) this.functions.add(f);
    // A body that may change a lexer setting does so whenever it is called, where no statement shows it.
    if (inner.info.changesLexing) this.info.changesLexing = true;
    if (inner.kinds.has("unknown")) this.addKind("unknown");
    if (inner.kinds.has("dynamic")) {
      this.addKind("dynamic");
      this.addAction({ kind: "dynamic" });
    }
  }

  /**
   * A PL/pgSQL body (a DO block's, run now, or a function's, classified by a collector of its
   * own): every SQL statement and expression in it, and the SQL text it EXECUTEs.
   */
  private walkPlpgsql(text: string): void {
    const body = readPlpgsql(text);
    if (!body) {
      this.addKind("unknown");
      return;
    }
    // EXECUTE of a string: what runs is decided at run time; a literal string is classified too.
    for (const expr of body.executed) this.dynamic({ sql: executedLiteral(expr), relations: [], dynamic: true });
    for (const sql of body.sql) this.walkSql(sql);
  }
}

/** The SQL text of `EXECUTE 'text'` when it is a string literal; [] for text computed at run time. */
function executedLiteral(expr: unknown): string[] {
  const query = unwrap(expr)?.[1]?.query;
  if (typeof query !== "string") return [];
  const select = unwrap(parseStatements(`SELECT ${query}`)[0])?.[1];
  const targets = select && Array.isArray(select.targetList) && !select.fromClause ? select.targetList : [];
  const value = targets.length === 1 ? literalOf(unwrap(targets[0])?.[1]?.val) : undefined;
  return value === undefined ? [] : [value];
}

function parseStatements(sql: string): unknown[] {
  return parseStatementsWithText(sql).map((s) => s.stmt);
}

/** Each statement's tree and its own text; [] when the text does not parse. */
function parseStatementsWithText(sql: string): Array<{ stmt: unknown; text: string }> {
  let tree: { stmts?: Array<{ stmt: unknown; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = lpq.parseSync(sql) as typeof tree;
  } catch {
    return [];
  }
  const bytes = Buffer.from(sql);
  return (tree.stmts ?? []).map((s) => ({ stmt: s.stmt, text: statementText(bytes, s) }));
}

/** A statement's text: locations are byte offsets; stmt_len 0 means "to the end". */
function statementText(bytes: Buffer, s: { stmt_location?: number; stmt_len?: number }): string {
  const start = s.stmt_location ?? 0;
  return bytes.toString("utf8", start, s.stmt_len ? start + s.stmt_len : bytes.length);
}

function finish(c: Collector): StatementInfo {
  const tables = [...new Set(c.actions.flatMap((a) => (a.table ? [tableText(a.table)] : [])))];
  const kinds = c.kinds.size > 0 ? [...c.kinds] : (["utility"] as StatementKind[]);
  return { kinds, actions: c.actions, tables, functions: [...c.functions], ...c.info };
}

class TooComplex extends Error {}

function classifyTree(stmt: unknown, text = ""): StatementInfo {
  const c = new Collector(text);
  try {
    c.walk(stmt);
  } catch (err) {
    if (err instanceof TooComplex || err instanceof RangeError) return UNKNOWN("statement too deeply nested to analyse");
    throw err;
  }
  return finish(c);
}

const UNKNOWN = (error: string): StatementInfo => ({ kinds: ["unknown"], actions: [{ kind: "unknown" }], tables: [], functions: [], error });

/**
 * Classifies every statement of a SQL string. Unparseable text yields one `unknown` statement;
 * an empty string yields none. loadSqlParser() must have resolved first.
 */
export function classifySql(sql: string): StatementInfo[] {
  // On the wire a NUL ends the text; anywhere else it would hide what follows from the parser.
  if (sql.includes("\0")) return [UNKNOWN("text contains a NUL byte")];
  if (sql.trim() === "") return [];
  let tree: { stmts?: Array<{ stmt: unknown; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = lpq.parseSync(sql) as typeof tree;
  } catch (err) {
    if (err instanceof RangeError) return [UNKNOWN("statement too deeply nested to analyse")];
    const details = (err as { sqlDetails?: { message?: unknown; cursorPosition?: unknown } }).sqlDetails;
    const message = (err as Error).message;
    if (typeof details?.cursorPosition !== "number") return [UNKNOWN(message)];
    return [{ ...UNKNOWN(message), syntaxError: { message, cursor: details.cursorPosition } }];
  }
  const bytes = Buffer.from(sql);
  return (tree.stmts ?? []).map((s) => classifyTree(s.stmt, statementText(bytes, s)));
}

/**
 * Folds a session's prepared statement into an EXECUTE: the EXECUTE carries every kind of what it
 * runs. An EXECUTE of a name the session never prepared (as far as the gateway saw) is `unknown`.
 */
export function resolveExecute(info: StatementInfo, prepared: (name: string) => StatementInfo | undefined): StatementInfo {
  if (info.explainsExecute !== undefined) {
    const target = prepared(info.explainsExecute);
    if (!target) return info;
    return {
      ...info,
      actions: [...info.actions, ...target.actions.map((a) => ({ ...a, kind: "explain" as const }))],
      tables: [...new Set([...info.tables, ...target.tables])],
      functions: [...new Set([...info.functions, ...target.functions])],
    };
  }
  if (info.executes === undefined) return info;
  const target = prepared(info.executes);
  if (!target) return { ...info, kinds: [...info.kinds, "unknown"], actions: [...info.actions, { kind: "unknown" }], error: `prepared statement "${info.executes}" is not known to the gateway` };
  return {
    ...info,
    kinds: [...new Set([...info.kinds, ...target.kinds])],
    actions: [...info.actions, ...target.actions],
    tables: [...new Set([...info.tables, ...target.tables])],
    functions: [...new Set([...info.functions, ...target.functions])],
  };
}

/** The text of each statement of a SQL string; undefined when it does not parse. */
export function splitStatements(sql: string): string[] | undefined {
  let tree: { stmts?: Array<{ stmt_location?: number; stmt_len?: number }> };
  try {
    tree = lpq.parseSync(sql) as typeof tree;
  } catch {
    return undefined;
  }
  const bytes = Buffer.from(sql);
  return (tree.stmts ?? []).map((s) => statementText(bytes, s));
}

/** The raw parse trees of a SQL string's statements; [] when it does not parse. */
export function parseStatementTrees(sql: string): unknown[] {
  return parseStatements(sql);
}

/** Query text with literals replaced by $n placeholders: safe to log. */
export function normalizeSql(sql: string): string | undefined {
  try {
    return lpq.normalizeSync(sql);
  } catch {
    return undefined;
  }
}

/** libpg-query's fingerprint: equal for statements that differ only in literal values. */
export function fingerprintSql(sql: string): string | undefined {
  try {
    return lpq.fingerprintSync(sql);
  } catch {
    return undefined;
  }
}
