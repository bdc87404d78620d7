/**
 * HTTP conditions of rules (`when.http`), judged the way the target will act on the request:
 * paths case-insensitively unless the connection says otherwise (Express, ASP.NET and IIS route
 * that way), a trailing slash ignored (Express's default non-strict routing), `/x/**` covering `/x`,
 * and GET covering HEAD (Express runs GET handlers for HEAD). Body fields (`body_json`) are compared
 * with three outcomes: a match, no match, or undecidable — when targets could read the value
 * differently (a numeric string against a number, a number too precise for a double, a body the
 * gateway could not read as the target would). Undecidable is never taken for "no match": the
 * request is refused (SPEC §9, `undecidable_body`).
 */
import type { RuleConfig } from "../config/schema.js";
import type { Operation } from "./decision.js";
import { anyGlob, type Matcher } from "./glob.js";

export type HttpOperation = Extract<Operation, { type: "http" }>;
export type HttpCondition = NonNullable<RuleConfig["when"]["http"]>;

/** Outcome of a condition: "undecidable" when the gateway cannot know what the target will see. */
export type Verdict = "yes" | "no" | "undecidable";

/**
 * A JSON number whose literal text is not what its double says back (`12345678901234567891`,
 * `1e400`, `100.000000000000000001`): exact-decimal targets and double targets read different
 * values, so comparisons are made both ways and a disagreement is undecidable.
 */
export class LooseNumber {
  constructor(readonly text: string, readonly value: number) {}
}

/** Operators of a `body_json` value object (SPEC §9). */
export const BODY_OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "in"] as const;
type BodyOperator = (typeof BODY_OPERATORS)[number];

/** Whether a `body_json` value is an operator object (`{ gt: 100 }`) rather than a literal. */
export function isOperatorObject(v: unknown): v is Partial<Record<BodyOperator, unknown>> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0
    && Object.keys(v).every((k) => (BODY_OPERATORS as readonly string[]).includes(k));
}

function all(verdicts: Iterable<Verdict>): Verdict {
  let out: Verdict = "yes";
  for (const v of verdicts) {
    if (v === "no") return "no";
    if (v === "undecidable") out = v;
  }
  return out;
}

function any(verdicts: Iterable<Verdict>): Verdict {
  let out: Verdict = "no";
  for (const v of verdicts) {
    if (v === "yes") return "yes";
    if (v === "undecidable") out = v;
  }
  return out;
}

const not = (v: Verdict): Verdict => (v === "yes" ? "no" : v === "no" ? "yes" : v);

// ---- numbers ---------------------------------------------------------------------------------

/** An exact decimal: sign, significant digits (no leading or trailing zeros), value = 0.digits × 10^exp. */
interface Decimal { neg: boolean; digits: string; exp: bigint }

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function decimalOf(text: string): Decimal {
  const m = DECIMAL_TEXT.exec(text)!;
  const int = m[2] ?? "";
  const all = int + (m[3] ?? "");
  const lead = all.length - all.replace(/^0+/, "").length;
  const digits = all.slice(lead).replace(/0+$/, "");
  return { neg: m[1] === "-" && digits !== "", digits, exp: BigInt(m[4] ?? "0") + BigInt(int.length - lead) };
}

function compareDecimal(a: Decimal, b: Decimal): number {
  const sign = (d: Decimal) => (d.digits === "" ? 0 : d.neg ? -1 : 1);
  if (sign(a) !== sign(b)) return Math.sign(sign(a) - sign(b));
  if (sign(a) === 0) return 0;
  let mag = a.exp === b.exp ? 0 : a.exp > b.exp ? 1 : -1;
  if (mag === 0) {
    const n = Math.max(a.digits.length, b.digits.length);
    const x = a.digits.padEnd(n, "0");
    const y = b.digits.padEnd(n, "0");
    mag = x === y ? 0 : x > y ? 1 : -1;
  }
  return a.neg ? -mag : mag;
}

/** What a value is as a number, to a target that coerces: a number, plainly not one, or unclear. */
type Numeric = { kind: "number"; value: number; text?: string } | { kind: "nan" } | { kind: "unclear" };

/** A string every common parser reads as the same number (JS Number/parseFloat, Python float, Go ParseFloat, Java). */
const NUMERIC_STRING = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function numericOf(v: unknown): Numeric | undefined {
  if (typeof v === "number") return { kind: "number", value: v };
  if (v instanceof LooseNumber) return { kind: "number", value: v.value, text: v.text };
  if (typeof v !== "string") return undefined;
  if (NUMERIC_STRING.test(v)) return { kind: "number", value: Number(v), text: v };
  // "0x1f4", " 500", "5e2abc", "1_000", "Infinity", "" and non-ASCII digits are numbers to some
  // parsers and not to others (Number(""), parseFloat, Python's float): nobody can say.
  const someoneReadsANumber = !Number.isNaN(Number(v)) || !Number.isNaN(Number.parseFloat(v))
    || (/[^\x00-\x7f]/.test(v) && /\p{Nd}/u.test(v)) || /^\s*[+-]?(inf|infinity|nan)\s*$/i.test(v);
  return someoneReadsANumber ? { kind: "unclear" } : { kind: "nan" };
}

/** Sign of (a - b); undefined when an exact-decimal reading and a double reading disagree. */
function compareNumber(a: { value: number; text?: string }, b: number): number | undefined {
  const double = a.value === b ? 0 : a.value > b ? 1 : -1;
  if (a.text === undefined) return double;
  const exact = compareDecimal(decimalOf(a.text), decimalOf(numberText(b)));
  return exact === double ? double : undefined;
}

/** Whether a number and a numeric text are the same number to an exact reader or to a double reader. */
function mayEqual(n: { value: number; text?: string }, text: string): boolean {
  return n.value === Number(text) || compareDecimal(decimalOf(n.text ?? numberText(n.value)), decimalOf(text)) === 0;
}

/** The decimal text of a double (String() gives "1e+21"-style exponents, which decimalOf reads). */
function numberText(n: number): string {
  return String(n);
}

/** Whether a JSON number literal reads back as the same decimal from its double (else a LooseNumber). */
export function plainNumber(text: string, value: number): boolean {
  return Number.isFinite(value) && compareDecimal(decimalOf(text), decimalOf(numberText(value))) === 0;
}

/** An ordered or numeric comparison against a number: the field must hold a number or a numeric string. */
function numeric(value: unknown, operand: number, test: (sign: number) => boolean): Verdict {
  if (value === undefined) return "no";
  const n = numericOf(value);
  if (n === undefined || n.kind === "unclear") return "undecidable";
  if (n.kind === "nan") return "no";
  const sign = compareNumber(n, operand);
  return sign === undefined ? "undecidable" : test(sign) ? "yes" : "no";
}

// ---- typed equality --------------------------------------------------------------------------

/**
 * Typed equality of a body value and a literal: types must agree, objects compare whatever their
 * key order. A numeric string equal to a literal number (or a number equal to a numeric-string
 * literal) is undecidable: many targets coerce one to the other.
 */
function same(value: unknown, literal: unknown): Verdict {
  if (value === undefined) return "no";
  if (typeof literal === "number") {
    if (typeof value === "string") {
      const n = numericOf(value)!;
      if (n.kind === "nan") return "no";
      return n.kind === "unclear" || mayEqual(n, String(literal)) ? "undecidable" : "no";
    }
    const n = numericOf(value);
    if (!n || n.kind !== "number") return "no";
    const sign = compareNumber(n, literal);
    return sign === undefined ? "undecidable" : sign === 0 ? "yes" : "no";
  }
  if (typeof literal === "string") {
    if (typeof value === "string") return value === literal ? "yes" : "no";
    const n = numericOf(value);
    return n?.kind === "number" && NUMERIC_STRING.test(literal) && mayEqual(n, literal) ? "undecidable" : "no";
  }
  if (literal === null || typeof literal === "boolean") return value === literal ? "yes" : "no";
  if (Array.isArray(literal)) {
    if (!Array.isArray(value) || value.length !== literal.length) return "no";
    return all(literal.map((l, i) => same(value[i], l)));
  }
  if (typeof literal === "object") {
    if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof LooseNumber) return "no";
    const keys = Object.keys(literal as object);
    if (Object.keys(value).length !== keys.length) return "no";
    return all(keys.map((k) => (Object.hasOwn(value, k) ? same((value as Record<string, unknown>)[k], (literal as Record<string, unknown>)[k]) : "no")));
  }
  return "no";
}

/** eq: numerically when the operand is a number (a numeric string is its number), else typed. */
function equal(value: unknown, operand: unknown): Verdict {
  return typeof operand === "number" ? numeric(value, operand, (s) => s === 0) : same(value, operand);
}

type FieldTest = (value: unknown) => Verdict;

function compileValue(expected: unknown): FieldTest {
  if (!isOperatorObject(expected)) return (v) => same(v, expected);
  const tests: FieldTest[] = [];
  for (const [op, operand] of Object.entries(expected) as [BodyOperator, unknown][]) {
    switch (op) {
      case "eq": tests.push((v) => equal(v, operand)); break;
      // An absent field is equal to nothing, so `ne` matches it.
      case "ne": tests.push((v) => not(equal(v, operand))); break;
      case "in": tests.push((v) => any((operand as unknown[]).map((o) => equal(v, o)))); break;
      case "gt": tests.push((v) => numeric(v, operand as number, (s) => s > 0)); break;
      case "gte": tests.push((v) => numeric(v, operand as number, (s) => s >= 0)); break;
      case "lt": tests.push((v) => numeric(v, operand as number, (s) => s < 0)); break;
      case "lte": tests.push((v) => numeric(v, operand as number, (s) => s <= 0)); break;
    }
  }
  return (v) => all(tests.map((t) => t(v)));
}

const UNREADABLE = Symbol("unreadable");

/** How a key compares to binders that ignore case (Go's encoding/json, ASP.NET), Kelvin sign and long s included. */
const folded = (key: string) => key.normalize("NFKC").toLowerCase();

/**
 * The value at a dotted path of a parsed body (own properties only; undefined when absent).
 * UNREADABLE when a key is present only in another case, or in several cases (`amount` and
 * `AMOUNT`): case-insensitive binders read a value there that JavaScript does not.
 */
function valueAt(body: unknown, path: readonly string[]): unknown {
  let v = body;
  for (const key of path) {
    if (v === null || typeof v !== "object" || v instanceof LooseNumber) return undefined;
    if (Array.isArray(v)) {
      v = /^\d+$/.test(key) ? v[Number(key)] : undefined;
      continue;
    }
    const fold = folded(key);
    const alike = Object.keys(v).filter((k) => k === key || folded(k) === fold);
    if (alike.length === 0) return undefined;
    if (alike.length > 1 || alike[0] !== key) return UNREADABLE;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

// ---- paths -----------------------------------------------------------------------------------

/**
 * A trailing slash does not count (non-strict routers, Express's default, take `/x/` for `/x`), in
 * paths and in patterns alike; so `*` never matches the empty segment after it (`/x/*` is not `/x/`).
 */
function withoutTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith("/") && !path.endsWith("**/") ? path.slice(0, -1) : path;
}

/** `/x/**` also matches `/x` itself: a route on the collection is "below" it to every router. */
function pathPatterns(patterns: readonly string[]): string[] {
  return patterns.map(withoutTrailingSlash).flatMap((p) => (p.endsWith("/**") && p.length > 3 ? [p, p.slice(0, -3)] : [p]));
}

// ---- the condition ---------------------------------------------------------------------------

export interface HttpMatcher {
  (op: HttpOperation): Verdict;
  /** Whether the condition reads the body (then an unreadable body makes it undecidable). */
  readsBody: boolean;
}

export function compileHttpCondition(h: HttpCondition): HttpMatcher {
  const methods = h.methods ? new Set(h.methods) : undefined;
  if (methods?.has("GET")) methods.add("HEAD");
  const patterns = h.paths ? pathPatterns(h.paths) : undefined;
  const insensitive = patterns ? anyGlob(patterns, { separator: "/", caseInsensitive: true }) : undefined;
  let sensitive: Matcher | undefined;
  const headers = h.headers ? Object.entries(h.headers).map(([k, v]) => [k.toLowerCase(), anyGlob([v])] as const) : [];
  const fields = h.body_json ? Object.entries(h.body_json).map(([p, v]) => [p.replace(/^\$\./, "").split("."), compileValue(v)] as const) : [];
  const route = (op: HttpOperation): boolean => {
    if (methods && !methods.has(op.method.toUpperCase())) return false;
    if (patterns) {
      const m = op.pathsCaseSensitive ? (sensitive ??= anyGlob(patterns, { separator: "/" })) : insensitive!;
      if (!m(withoutTrailingSlash(op.path))) return false;
    }
    return headers.every(([k, m]) => {
      const v = Object.entries(op.headers).find(([name]) => name.toLowerCase() === k)?.[1];
      return v !== undefined && m(v);
    });
  };
  const matcher = ((op: HttpOperation): Verdict => {
    if (!route(op)) return "no";
    if (fields.length === 0) return "yes";
    if (op.undecidable !== undefined) return "undecidable";
    return all(fields.map(([path, test]) => {
      const value = valueAt(op.body, path);
      return value === UNREADABLE ? "undecidable" : test(value);
    }));
  }) as HttpMatcher;
  matcher.readsBody = fields.length > 0;
  return matcher;
}
