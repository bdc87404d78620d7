/**
 * SQL text with only its values passed through a masker: string constants, quoted identifiers and
 * comments, token by token (PostgreSQL's own scanner, through libpg-query). What an approver reads
 * keeps every keyword, name and operator: a detector's match cannot reach across tokens and hide a
 * statement (`SELECT '-----BEGIN PRIVATE KEY-----'; DELETE ...; SELECT '-----END PRIVATE KEY-----'`).
 */
import lpq from "libpg-query";

const VALUE_TOKENS = new Set(["SCONST", "USCONST", "BCONST", "XCONST", "C_COMMENT", "SQL_COMMENT"]);

interface Token { tokenName: string; start: number; end: number }

export function maskSqlValues(sql: string, mask: (value: string) => string): string {
  let tokens: Token[];
  try {
    tokens = (lpq.scanSync(sql) as { tokens: Token[] }).tokens;
  } catch {
    return mask(sql);
  }
  const bytes = Buffer.from(sql, "utf8");
  const out: string[] = [];
  let at = 0;
  for (const t of tokens) {
    const text = bytes.toString("utf8", t.start, t.end);
    const value = VALUE_TOKENS.has(t.tokenName) || (t.tokenName === "IDENT" && text.startsWith('"'));
    if (!value) continue;
    out.push(bytes.toString("utf8", at, t.start), mask(text));
    at = t.end;
  }
  out.push(bytes.toString("utf8", at));
  return out.join("");
}
