/**
 * The path a request names below /c/<connection>, made canonical before anything judges it: dot
 * segments resolved (also percent-encoded ones), percent-encoding decoded for the rules. Rules must
 * see the path the target will act on, or `/v1/../admin/users` and `/v1/%72efunds/1` would slip
 * past `/admin/**` and `/v1/refunds/**`. Encoded slashes, backslashes and NUL bytes are refused:
 * targets disagree about what they mean, so no rule could be sure to match them.
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
  return { judged, forward: url.pathname + url.search };
}
