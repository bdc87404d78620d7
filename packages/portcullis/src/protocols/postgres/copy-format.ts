/**
 * The text/CSV layout a COPY statement asks for, read from its options as PostgreSQL reads them
 * (ProcessCopyOptions in copy.c), so the masker splits COPY rows the way the server wrote them.
 * Both spellings reach here as the same options: `WITH (FORMAT csv, HEADER, FORCE_QUOTE *)` and
 * the legacy `WITH CSV HEADER QUOTE AS '"' ESCAPE AS '\' FORCE QUOTE * DELIMITER AS ',' NULL AS ''`.
 * Anything that would make the output mean something else than the gateway reads is reported as
 * `unreadable`: the masker must refuse rather than guess.
 */
import { parseStatementTrees } from "../../policy/sql/classify.js";
import { type CopyFormat, DEFAULT_CSV, DEFAULT_TEXT, nullIsAmbiguous, nullReadsBack } from "./copy-text.js";

type Arg = Record<string, { sval?: string; boolval?: boolean; ival?: number; items?: unknown[] }>;
interface DefElem { defname?: string; arg?: Arg }

/**
 * Options that do not change what COPY TO writes: COPY FROM only (PostgreSQL refuses them with TO,
 * or ignores them), or logging. FORCE_QUOTE only adds quotes, which the reader takes off.
 */
const NO_OUTPUT_EFFECT = new Set(["force_quote", "force_not_null", "force_null", "freeze", "default", "on_error", "reject_limit", "log_verbosity", "convert_selectively"]);

/** PostgreSQL's spellings of encodings whose bytes the gateway reads as they are (UTF-8, no conversion). */
const READABLE_ENCODINGS = new Set(["utf8", "unicode", "sqlascii"]);

/** The text/CSV options of a COPY statement, read from its parse tree (defaults per format). */
export function copyFormatOf(sql: string): CopyFormat {
  const tree = parseStatementTrees(sql)[0] as { CopyStmt?: { options?: unknown[] } } | undefined;
  if (!tree?.CopyStmt) return { ...DEFAULT_TEXT, unreadable: "not a COPY statement the gateway could read" };
  const opts = new Map<string, Arg | undefined>();
  for (const o of tree.CopyStmt.options ?? []) {
    const d = (o as { DefElem?: DefElem }).DefElem;
    if (d?.defname !== undefined) opts.set(d.defname, d.arg);
  }
  const format = opts.has("format") ? stringOf(opts.get("format")) : "text";
  const csv = format === "csv";
  const base = csv ? DEFAULT_CSV : DEFAULT_TEXT;
  const quote = opts.has("quote") ? stringOf(opts.get("quote")) : base.quote;
  const out: CopyFormat = {
    csv,
    delimiter: opts.has("delimiter") ? stringOf(opts.get("delimiter")) ?? "" : base.delimiter,
    quote: quote ?? "",
    // ESCAPE defaults to QUOTE, whatever QUOTE was set to.
    escape: opts.has("escape") ? stringOf(opts.get("escape")) ?? "" : quote ?? "",
    null: opts.has("null") ? stringOf(opts.get("null")) ?? "\n" : base.null,
    header: opts.has("header") ? headerOf(opts.get("header")) === true : false,
  };
  const why = unreadable(out, format, opts);
  if (why) return { ...out, unreadable: why };
  return nullIsAmbiguous(out) ? { ...out, ambiguousNull: true } : out;
}

/** Why output under these options cannot be read exactly; undefined when it can. */
function unreadable(f: CopyFormat, format: string | undefined, opts: Map<string, Arg | undefined>): string | undefined {
  if (format !== "text" && format !== "csv") return `COPY FORMAT ${format ?? "?"} cannot be read field by field`;
  const unknown = [...opts.keys()].find((k) => !NO_OUTPUT_EFFECT.has(k) && !["format", "delimiter", "quote", "escape", "null", "header", "encoding"].includes(k));
  if (unknown !== undefined) return `COPY option ${unknown} is not understood by the gateway`;
  if (opts.has("encoding")) {
    // PostgreSQL converts COPY output to this encoding: its bytes would be read as UTF-8 here.
    const name = (stringOf(opts.get("encoding")) ?? "").toLowerCase().replace(/[^a-z0-9]/g, "");
    if (!READABLE_ENCODINGS.has(name)) return "COPY ENCODING other than UTF8 cannot be read by the gateway";
  }
  if (opts.has("header") && headerOf(opts.get("header")) === undefined) return "COPY HEADER value is not understood by the gateway";
  // PostgreSQL refuses these itself; a reader must not assume they will be refused.
  const single = (c: string): boolean => c.length === 1 && c.charCodeAt(0) < 0x80 && c !== "\n" && c !== "\r";
  if (!single(f.delimiter) || (f.csv && (!single(f.quote) || !single(f.escape) || f.quote === f.delimiter))) return "COPY DELIMITER, QUOTE and ESCAPE must be single ASCII characters";
  if (f.null.includes("\n") || f.null.includes("\r") || !nullReadsBack(f)) return "COPY NULL string cannot be read back as NULL";
  return undefined;
}

/** The string of an option argument (PostgreSQL's defGetString: strings, keywords, numbers). */
function stringOf(arg: Arg | undefined): string | undefined {
  if (!arg) return undefined;
  const [kind, v] = Object.entries(arg)[0] ?? [];
  if (kind === "String") return v?.sval ?? "";
  if (kind === "Boolean") return v?.boolval ? "true" : "false";
  if (kind === "Integer") return String(v?.ival ?? 0);
  return undefined;
}

/** HEADER as defGetCopyHeaderChoice reads it for COPY TO (no argument: true); undefined if not a boolean. */
function headerOf(arg: Arg | undefined): boolean | undefined {
  if (!arg) return true;
  const s = (stringOf(arg) ?? "").toLowerCase();
  if (["true", "on", "1"].includes(s)) return true;
  if (["false", "off", "0"].includes(s)) return false;
  return undefined;
}
