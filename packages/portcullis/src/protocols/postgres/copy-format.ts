/**
 * The text/CSV layout a COPY statement asks for, read from its options as PostgreSQL reads them,
 * so the masker splits COPY rows the way the server wrote them.
 */
import { parseStatementTrees } from "../../policy/sql/classify.js";
import { type CopyFormat, DEFAULT_CSV, DEFAULT_TEXT } from "./copy-text.js";

/** The text/CSV options of a COPY statement, read from its parse tree (defaults per format). */
export function copyFormatOf(sql: string): CopyFormat {
  const tree = parseStatementTrees(sql)[0] as { CopyStmt?: { options?: unknown[] } } | undefined;
  const opts = new Map<string, string>();
  for (const o of tree?.CopyStmt?.options ?? []) {
    const d = (o as { DefElem?: { defname?: string; arg?: Record<string, { sval?: string }> } }).DefElem;
    if (!d?.defname) continue;
    const arg = d.arg ? Object.values(d.arg)[0] : undefined;
    opts.set(d.defname.toLowerCase(), typeof arg?.sval === "string" ? arg.sval : "true");
  }
  const csv = (opts.get("format") ?? "").toLowerCase() === "csv";
  const base = csv ? DEFAULT_CSV : DEFAULT_TEXT;
  return {
    csv,
    delimiter: opts.get("delimiter") ?? base.delimiter,
    quote: opts.get("quote") ?? base.quote,
    null: opts.get("null") ?? base.null,
  };
}
