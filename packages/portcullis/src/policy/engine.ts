/**
 * Rules → decisions. Pure: `(principal, connection, operation) → Decision`. Rules are compiled
 * once (globs to RegExps); evaluation is first match per part (statement), strictest across parts.
 */
import type { RuleConfig } from "../config/schema.js";
import { memberOf, type Principal } from "../identity/principal.js";
import { type Action, type Decision, type McpCall, type Operation, PROTECTED_SETTING_RULE, STRICTNESS, UNDECIDABLE_BODY_RULE, UNKNOWN_DEFAULT_RULE } from "./decision.js";
import { anyGlob } from "./glob.js";
import { type HttpMatcher, compileHttpCondition } from "./http.js";
import type { SqlAction, StatementInfo, TableName } from "./sql/classify.js";
import { DEFAULT_SEARCH_PATH, type PathWalk, type SearchPath, pathChangeOf, resolvesOnlyInto, schemasOf, stepSearchPath } from "./sql/search-path.js";

/** Schemas an unqualified name may resolve to; undefined: any. */
type Schemas = readonly string[] | undefined;

interface CompiledRule {
  name: string;
  action: Action;
  message?: string;
  connections?: Set<string>;
  groups?: string[];
  sql?: (s: StatementInfo, schemas: Schemas) => boolean;
  http?: HttpMatcher;
  mcp?: (call: McpCall) => boolean;
  ssh?: (op: Extract<Operation, { type: "ssh" }>) => boolean;
  /** Whether the rule's SQL condition names the `unknown` kind (then it, not the default, decides). */
  speaksOfUnknown: boolean;
}

/**
 * A name matcher for table and function patterns: a pattern without a schema matches the name in
 * any schema; `schema.name` matches a qualified name exactly. An unqualified name matches it through
 * the search_path: for a rule that refuses (`strict`), when any schema it may resolve to matches; for
 * a rule that allows, only when every schema it may resolve to does, and never when the path is
 * unknown. Both fail closed. Case-insensitive: `"Customers"` is treated as customers.
 */
function nameMatcher(patterns: string[], strict: boolean, relation: boolean): (name: string, schema: string | undefined, schemas: Schemas) => boolean {
  const qualified = patterns.filter((p) => p.includes("."));
  const bare = patterns.filter((p) => !p.includes("."));
  const full = qualified.length ? anyGlob(qualified, { caseInsensitive: true }) : undefined;
  const nameOfQualified = qualified.length ? anyGlob(qualified.map((p) => p.slice(p.lastIndexOf(".") + 1)), { caseInsensitive: true }) : undefined;
  const last = bare.length ? anyGlob(bare, { caseInsensitive: true }) : undefined;
  return (name, schema, schemas) => {
    if (last?.(name)) return true;
    if (!full) return false;
    if (schema !== undefined) return full(`${schema}.${name}`);
    if (!strict) return schemas !== undefined && resolvesOnlyInto(schemas, name, (s) => full(`${s}.${name}`), relation);
    if (schemas === undefined) return nameOfQualified!(name);
    return schemas.some((s) => full(`${s}.${name}`));
  };
}

function tableMatcher(patterns: string[], strict: boolean): (t: TableName, schemas: Schemas) => boolean {
  const m = nameMatcher(patterns, strict, true);
  return (t, schemas) => m(t.name, t.schema, schemas);
}

/** Function patterns match however the call is spelled: with or without schema, any case. */
function functionMatcher(patterns: string[], strict: boolean): (fn: string, schemas: Schemas) => boolean {
  const m = nameMatcher(patterns, strict, false);
  return (fn, schemas) => {
    const dot = fn.lastIndexOf(".");
    return dot < 0 ? m(fn, undefined, schemas) : m(fn.slice(dot + 1), fn.slice(0, dot), schemas);
  };
}

function compileSql(cond: NonNullable<RuleConfig["when"]["sql"]>, strict: boolean): (s: StatementInfo, schemas: Schemas) => boolean {
  const kinds = cond.statements ? new Set<string>(cond.statements) : undefined;
  const tables = cond.tables ? tableMatcher(cond.tables, strict) : undefined;
  const functions = cond.functions ? functionMatcher(cond.functions, strict) : undefined;
  const actionLevel = kinds || tables || cond.no_where || cond.program;
  // statements, tables, no_where and program must hold for one and the same action (SPEC §2).
  const actionMatches = (a: SqlAction, schemas: Schemas) =>
    (!kinds || kinds.has(a.kind)) &&
    (!tables || (a.table !== undefined && tables(a.table, schemas))) &&
    (!cond.no_where || a.noWhere === true) &&
    (!cond.program || a.program === true);
  return (s, schemas) => {
    if (functions && !s.functions.some((f) => functions(f, schemas))) return false;
    if (!actionLevel) return true;
    // A statement whose kinds include one no action carries (e.g. `unknown`) still matches on kind.
    if (kinds && !tables && !cond.no_where && !cond.program && s.kinds.some((k) => kinds.has(k))) return true;
    return s.actions.some((a) => actionMatches(a, schemas));
  };
}

function compileRule(r: RuleConfig): CompiledRule {
  const c: CompiledRule = {
    name: r.name,
    action: r.action,
    ...(r.message !== undefined ? { message: r.message } : {}),
    ...(r.connections ? { connections: new Set(r.connections) } : {}),
    ...(r.groups ? { groups: r.groups } : {}),
    speaksOfUnknown: r.when.sql?.statements?.includes("unknown") ?? false,
  };
  if (r.when.sql) c.sql = compileSql(r.when.sql, r.action !== "allow");
  if (r.when.http) c.http = compileHttpCondition(r.when.http);
  if (r.when.mcp) {
    const tools = anyGlob(r.when.mcp.tools);
    c.mcp = (call) => tools(call.tool);
  }
  if (r.when.ssh) {
    const commands = anyGlob(r.when.ssh.commands);
    c.ssh = (op) => commands(op.command.trim());
  }
  return c;
}

function stricter(a: Action, b: Action): boolean {
  return STRICTNESS[a] > STRICTNESS[b];
}

export interface SqlContext {
  /** The session's search_path before this operation (default: PostgreSQL's default). */
  searchPath?: SearchPath;
  /** Where RESET returns to. */
  initialSearchPath?: SearchPath;
  /** The open transaction has changed the path (a COMMIT or ROLLBACK in this operation decides whether that stays). */
  searchPathChanged?: boolean;
  /** The target user, for `$user` in the path. */
  user?: string;
}

export class PolicyEngine {
  private readonly rules: CompiledRule[];
  /** Whether any SQL rule names a schema: only then does the session's search_path matter. */
  readonly usesSchemas: boolean;

  constructor(rules: readonly RuleConfig[]) {
    this.rules = rules.map(compileRule);
    this.usesSchemas = rules.some((r) => [...(r.when.sql?.tables ?? []), ...(r.when.sql?.functions ?? [])].some((p) => p.includes(".")));
  }

  get size(): number {
    return this.rules.length;
  }

  decide(principal: Principal, connection: string, op: Operation, ctx: SqlContext = {}): Decision {
    const applicable = this.rules.filter(
      (r) => (!r.connections || r.connections.has(connection)) && (!r.groups || memberOf(principal, r.groups)),
    );
    if (op.type === "http") {
      // The request as a whole (first rule that matches), then each MCP tool call in it: the
      // strictest outcome wins. A rule that may match, were the body readable, refuses the request:
      // first-match order cannot be kept without knowing whether it matched.
      let rule: CompiledRule | undefined;
      for (const r of applicable) {
        const verdict = r.http?.(op) ?? "no";
        if (verdict === "undecidable") return undecidableBody(op);
        if (verdict === "yes") { rule = r; break; }
      }
      // An MCP body the gateway could not read may carry any tool call.
      if (op.undecidable?.mcp && applicable.some((r) => r.mcp)) return undecidableBody(op);
      let worst: Decision = rule ? this.outcome(rule) : { action: "allow" };
      for (const call of op.mcp ?? []) {
        const r = applicable.find((x) => x.mcp?.(call) ?? false);
        if (r && stricter(r.action, worst.action)) worst = this.outcome(r);
      }
      return worst;
    }
    if (op.type !== "sql") {
      const rule = applicable.find((r) => r.ssh?.(op) ?? false);
      return rule ? this.outcome(rule) : { action: "allow" };
    }
    let worst: Decision | undefined;
    const statements: NonNullable<Decision["statements"]> = [];
    const initial = ctx.initialSearchPath ?? ctx.searchPath ?? DEFAULT_SEARCH_PATH;
    let walk: PathWalk = { path: ctx.searchPath ?? initial, changed: ctx.searchPathChanged ?? false };
    for (const s of op.statements) {
      const d = this.decideStatement(applicable, s, schemasOf(walk.path, ctx.user));
      statements.push(d.rule !== undefined ? { action: d.action, rule: d.rule } : { action: d.action });
      // Strictest wins; among equals, a decision a rule made is more telling than the default.
      if (!worst || stricter(d.action, worst.action) || (d.action === worst.action && worst.rule === undefined && d.rule !== undefined)) worst = d;
      // A SET search_path earlier in the message changes where later names resolve.
      walk = stepSearchPath(walk, initial, pathChangeOf(s), s.kinds.includes("transaction"));
    }
    return { ...(worst ?? { action: "allow" }), statements };
  }

  private decideStatement(rules: CompiledRule[], s: StatementInfo, schemas: Schemas): Decision {
    // Before any rule: a statement that would make the target read SQL differently from the gateway.
    if (s.changesLexing) return { action: "deny", rule: PROTECTED_SETTING_RULE, message: "standard_conforming_strings, client_encoding and backslash_quote cannot be changed through the gateway" };
    const unknown = s.kinds.includes("unknown");
    for (const r of rules) {
      if (!r.sql || !r.sql(s, schemas)) continue;
      // An allow that does not speak of `unknown` does not let unparseable text through.
      if (unknown && r.action === "allow" && !r.speaksOfUnknown) continue;
      return this.outcome(r);
    }
    if (unknown) return { action: "deny", rule: UNKNOWN_DEFAULT_RULE, message: "the statement could not be understood, and no rule allows unknown statements" };
    return { action: "allow" };
  }

  private outcome(r: CompiledRule): Decision {
    return { action: r.action, rule: r.name, ...(r.message !== undefined ? { message: r.message } : {}) };
  }
}

function undecidableBody(op: Extract<Operation, { type: "http" }>): Decision {
  const why = op.undecidable?.reason ?? "a body field cannot be compared the way every target would read it";
  return { action: "deny", rule: UNDECIDABLE_BODY_RULE, message: `the request body cannot be judged: ${why}` };
}
