/**
 * Header handling of the reverse proxy (RFC 9110 §7.6.1): hop-by-hop headers, and every header the
 * Connection header names, end at the gateway in both directions. The agent's Authorization (its
 * token) and the gateway's own X-Portcullis-* hints never reach the target.
 */
import type { IncomingHttpHeaders } from "node:http";

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
  "te", "trailer", "transfer-encoding", "upgrade",
]);

/** Headers whose values the gateway sets itself toward the target. */
const GATEWAY_SET = new Set(["host", "authorization", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"]);

/**
 * Headers that make some targets act on another path or method than the request line's (IIS URL
 * Rewrite and Symfony read X-Original-URL, method-override middleware X-HTTP-Method-Override): the
 * rules judged the request line, so the target must act on it.
 */
const REROUTING = new Set(["x-original-url", "x-rewrite-url", "x-http-method-override", "x-http-method", "x-method-override"]);

export const RUN_HINT_PREFIX = "x-portcullis-run-";

function connectionListed(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Set<string> {
  const c = headers.connection;
  const listed = new Set<string>();
  for (const v of Array.isArray(c) ? c : c ? [c] : []) for (const name of v.split(",")) listed.add(name.trim().toLowerCase());
  return listed;
}

/** The agent's request headers as the target should see them (before credentials are added). */
export function requestHeadersForTarget(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = connectionListed(headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(n) || listed.has(n) || GATEWAY_SET.has(n) || REROUTING.has(n) || n.startsWith("x-portcullis-")) continue;
    out[n] = value;
  }
  return out;
}

/** The target's response headers as the agent should see them; `drop` names more to leave out (content-length after masking...). */
export function responseHeadersForAgent(headers: Record<string, string | string[] | undefined>, drop: readonly string[] = []): Record<string, string | string[]> {
  const listed = connectionListed(headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(n) || listed.has(n) || drop.includes(n)) continue;
    out[n] = value;
  }
  return out;
}

/** X-Portcullis-Run-Graph-Id and friends: unsigned run-context hints, recorded apart from signed claims. */
export function runHintsOf(headers: IncomingHttpHeaders): Record<string, string> {
  const hints: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.toLowerCase().startsWith(RUN_HINT_PREFIX) || typeof value !== "string") continue;
    const key = name.slice(RUN_HINT_PREFIX.length).toLowerCase().replace(/-/g, "_");
    if (key === "graph_id" || key === "thread_id" || key === "run_id" || key === "node") hints[key] = value.slice(0, 256);
  }
  return hints;
}
