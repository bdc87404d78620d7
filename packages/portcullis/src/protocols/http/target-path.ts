/**
 * The path a request names below /c/<connection>, made canonical before anything judges it: dot
 * segments resolved (also percent-encoded ones), percent-encoding decoded for the rules. Rules must
 * see the path the target will act on, or `/v1/../admin/users` and `/v1/%72efunds/1` would slip
 * past `/admin/**` and `/v1/refunds/**`. Forms that targets disagree about are refused, since no
 * rule could be sure to match them (each is documented in docs/http.md):
 * - encoded slash, backslash and NUL (`%2F`, `%5C`, `%00`), and malformed percent-encoding;
 * - encoded `?` and `#` (`%3F`, `%23`): decoded, `/items/42%3Fdry_run=true` reads as a path with a
 *   query, to rules and to an approver, while the target gets one segment `42?dry_run=true`;
 * - `;` (matrix parameters: Spring and Tomcat drop `;x=1` from a segment before routing, Express
 *   keeps it), raw or encoded;
 * - empty segments (`//`: nginx and some frameworks merge them, Express does not);
 * - a segment ending in `.` or a space (IIS and Windows strip those: `refunds.` is `refunds`);
 * - control, invisible and format characters, line separators, combining marks, private-use and
 *   unassigned code points (an approver would read them otherwise), and any non-ASCII character that Unicode
 *   normalisation (NFKC) or case mapping turns into ASCII (full-width `ｒｅｆｕｎｄｓ`, the Kelvin
 *   sign, long s, dotless i): a target that normalises or folds would route it as ASCII.
 */
import { PortcullisError } from "../../errors.js";

export interface TargetPath {
  /** Decoded path, what rules, audit and approvals see. */
  judged: string;
  /** Canonical encoded path and query, what is sent to the target. */
  forward: string;
}

const BASE = "http://gateway.invalid";

export function targetPath(rawUrl: string, connection: string): TargetPath {
  const prefix = `/c/${connection}`;
  if (!rawUrl.startsWith(prefix) || !["", "/", "?"].includes(rawUrl.charAt(prefix.length))) {
    throw new PortcullisError("E_PROTOCOL", "malformed request path");
  }
  let rest = rawUrl.slice(prefix.length);
  if (!rest.startsWith("/")) rest = `/${rest}`;
  // Appended to a fixed origin (not resolved against it): "//host/x" stays a path.
  const url = new URL(BASE + rest);
  if (/%(2f|5c|00)/i.test(url.pathname)) throw new PortcullisError("E_PROTOCOL", "encoded '/', '\\' or NUL in the path");
  let judged: string;
  try {
    judged = decodeURIComponent(url.pathname);
  } catch {
    throw new PortcullisError("E_PROTOCOL", "malformed percent-encoding in the path");
  }
  const ambiguous = ambiguity(judged);
  if (ambiguous) throw new PortcullisError("E_PROTOCOL", ambiguous);
  return { judged, forward: url.pathname + url.search };
}

/** Why targets could route a decoded path differently from its plain reading; undefined when they cannot. */
function ambiguity(path: string): string | undefined {
  if (/[?#]/.test(path)) return "an encoded '?' or '#' in the path";
  if (path.includes(";")) return "';' (matrix parameters) in the path";
  if (path.includes("//")) return "an empty segment ('//') in the path";
  if (/[. ](\/|$)/.test(path)) return "a path segment ending in '.' or a space";
  if (/[\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\p{Zl}\p{Zp}\p{M}\p{Co}\p{Cn}]/u.test(path)) return "a control, invisible, combining, private-use or unassigned character in the path";
  for (const ch of path.replace(/[\x00-\x7f]/g, "")) {
    if (/[\x00-\x7f]/.test(ch.normalize("NFKC") + ch.toLowerCase() + ch.toUpperCase())) return "a character in the path that Unicode normalisation or case mapping makes ASCII";
  }
  return undefined;
}
