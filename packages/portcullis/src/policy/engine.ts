/**
 * Rules → decisions. Pure: `(principal, connection, operation) → Decision`. Rules are compiled
 * once (globs to RegExps); evaluation is first match per part (statement), strictest across parts.
 */
import type { RuleConfig } from "../config/schema.js";
import { memberOf, type Principal } from "../identity/principal.js";
import { type Action, type Decision, type Operation, STRICTNESS, UNKNOWN_DEFAULT_RULE } from "./decision.js";
import { type Matcher, anyGlob } from "./glob.js";
import type { SqlAction, StatementInfo, TableName } from "./sql/classify.js";

interface CompiledRule {
  name: string;
  action: Action;
  message?: string;
  connections?: Set<string>;
  groups?: string[];
  sql?: (s: StatementInfo) => boolean;
  http?: (op: Extract<Operation, { type: "http" }>) => boolean;
  ssh?: (op: Extract<Operation, { type: "ssh" }>) => boolean;
  /** Whether the rule's SQL condition names the `unknown` kind (then it, not the default, decides). */
  speaksOfUnknown: boolean;
}

/**
 * Table patterns: `name` matches that table in any schema; `schema.name` matches it exactly, and
 * also an unqualified reference to `name`, since the session's search_path may resolve it there.
 */
function tableMatcher(patterns: string[]): (t: TableName) => boolean {
  const qualified = patterns.filter((p) => p.includes("."));
  const bare = patterns.filter((p) => !p.includes("."));
  const full = qualified.length ? anyGlob(qualified, { caseInsensitive: true }) : undefined;
  const nameOfQualified = qualified.length ? anyGlob(qualified.map((p) => p.slice(p.lastIndexOf(".") + 1)), { caseInsensitive: true }) : undefined;
  const name = bare.length ? anyGlob(bare, { caseInsensitive: true }) : undefined;
  return (t) => {
    if (name?.(t.name)) return true;
    if (t.schema) return full?.(`${t.schema}.${t.name}`) ?? false;
    return nameOfQualified?.(t.name) ?? false;
  };
}

/** Function patterns match however the call is spelled: with or without schema, any case. */
function functionMatcher(patterns: string[]): Matcher {
  const qualified = patterns.filter((p) => p.includes("."));
  const bare = patterns.filter((p) => !p.includes("."));
  const full = qualified.length ? anyGlob(qualified, { caseInsensitive: true }) : undefined;
  const last = bare.length ? anyGlob(bare, { caseInsensitive: true }) : undefined;
  return (fn) => (last?.(fn.slice(fn.lastIndexOf(".") + 1)) ?? false) || (full?.(fn) ?? false);
}

function compileSql(cond: NonNullable<RuleConfig["when"]["sql"]>): (s: StatementInfo) => boolean {
  const kinds = cond.statements ? new Set<string>(cond.statements) : undefined;
  const tables = cond.tables ? tableMatcher(cond.tables) : undefined;
  const functions = cond.functions ? functionMatcher(cond.functions) : undefined;
  const actionLevel = kinds || tables || cond.no_where || cond.program;
  // statements, tables, no_where and program must hold for one and the same action (SPEC §2).
  const actionMatches = (a: SqlAction) =>
    (!kinds || kinds.has(a.kind)) &&
    (!tables || (a.table !== undefined && tables(a.table))) &&
    (!cond.no_where || a.noWhere === true) &&
    (!cond.program || a.program === true);
  return (s) => {
    if (functions && !s.functions.some(functions)) return false;
    if (!actionLevel) return true;
    // A statement whose kinds include one no action carries (e.g. `unknown`) still matches on kind.
    if (kinds && !tables && !cond.no_where && !cond.program && s.kinds.some((k) => kinds.has(k))) return true;
    return s.actions.some(actionMatches);
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
  if (r.when.sql) c.sql = compileSql(r.when.sql);
  if (r.when.http) {
    const h = r.when.http;
    const methods = h.methods ? new Set(h.methods) : undefined;
    const paths = h.paths ? anyGlob(h.paths, { separator: "/" }) : undefined;
    const headers = h.headers ? Object.entries(h.headers).map(([k, v]) => [k.toLowerCase(), anyGlob([v])] as const) : [];
    c.http = (op) =>
      (!methods || methods.has(op.method.toUpperCase())) &&
      (!paths || paths(op.path)) &&
      headers.every(([k, m]) => {
        const v = Object.entries(op.headers).find(([name]) => name.toLowerCase() === k)?.[1];
        return v !== undefined && m(v);
      });
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

export class PolicyEngine {
  private readonly rules: CompiledRule[];

  constructor(rules: readonly RuleConfig[]) {
    this.rules = rules.map(compileRule);
  }

  get size(): number {
    return this.rules.length;
  }

  decide(principal: Principal, connection: string, op: Operation): Decision {
    const applicable = this.rules.filter(
      (r) => (!r.connections || r.connections.has(connection)) && (!r.groups || memberOf(principal, r.groups)),
    );
    if (op.type !== "sql") {
      const rule = applicable.find((r) => (op.type === "http" ? r.http?.(op) : r.ssh?.(op)) ?? false);
      return rule ? this.outcome(rule) : { action: "allow" };
    }
    let worst: Decision = { action: "allow" };
    const statements: NonNullable<Decision["statements"]> = [];
    for (const s of op.statements) {
      const d = this.decideStatement(applicable, s);
      statements.push(d.rule !== undefined ? { action: d.action, rule: d.rule } : { action: d.action });
      if (stricter(d.action, worst.action)) worst = d;
    }
    return { ...worst, statements };
  }

  private decideStatement(rules: CompiledRule[], s: StatementInfo): Decision {
    const unknown = s.kinds.includes("unknown");
    for (const r of rules) {
      if (!r.sql || !r.sql(s)) continue;
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
