/**
 * Signed JSON POSTs to an operator's endpoint: audit sinks, checkpoint anchors and alerts all go
 * through here. The receiver checks `X-Portcullis-Signature` = HMAC-SHA256(secret, timestamp "."
 * body) and rejects stale timestamps, so a captured request cannot be replayed later or altered.
 */
import { createHmac } from "node:crypto";

export const TIMESTAMP_HEADER = "X-Portcullis-Timestamp";
export const SIGNATURE_HEADER = "X-Portcullis-Signature";

const DEFAULT_TIMEOUT_MS = 10_000;

export function signBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export interface PostSignedOptions {
  url: string;
  /** Signs the request when given; never appears in errors or logs. */
  secret?: string;
  /** JSON text, sent as is. */
  body: string;
  /** Whole request, up to the response headers; default 10 s. */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/**
 * A failed POST. The message names only the URL's origin (the path or query may carry a token)
 * and the status or network error code: never the secret, the body or the response.
 */
export class WebhookError extends Error {
  constructor(readonly origin: string, readonly status: number | undefined, reason: string) {
    super(`POST ${origin} failed: ${reason}`);
    this.name = "WebhookError";
  }
}

/** Resolves on a 2xx answer; rejects on any other status, a network error or the timeout. */
export async function postSigned(opts: PostSignedOptions): Promise<void> {
  const origin = originOf(opts.url);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timestamp = String(Math.floor(Date.now() / 1000));
  // set(), not a spread: a caller's "Content-Type" must not end up next to ours.
  const headers = new Headers(opts.headers);
  headers.set("content-type", "application/json");
  headers.set(TIMESTAMP_HEADER, timestamp);
  if (opts.secret !== undefined) headers.set(SIGNATURE_HEADER, signBody(opts.secret, timestamp, opts.body));
  let res: Response;
  try {
    // A redirect would re-send the signed body somewhere the operator did not configure.
    res = await fetch(opts.url, { method: "POST", headers, body: opts.body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new WebhookError(origin, undefined, networkReason(err, timeoutMs));
  }
  // The answer's body is of no interest; cancelling frees the connection without reading it.
  await res.body?.cancel().catch(() => undefined);
  if (!res.ok) throw new WebhookError(origin, res.status, `HTTP ${res.status}`);
}

/**
 * Delay before retry number `attempt` (0 for the first retry): exponential with full jitter, so
 * many gateways retrying one endpoint spread out instead of arriving together.
 */
export function backoff(attempt: number, baseMs = 500, maxMs = 30_000): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.floor(Math.random() * ceiling);
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    // The URL itself stays out of the message: it may hold a token.
    throw new WebhookError("(invalid URL)", undefined, "invalid URL");
  }
}

/** fetch() wraps socket errors as TypeError("fetch failed") with the errno code on the cause. */
function networkReason(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return `timed out after ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  return code ? `network error (${code})` : "network error";
}
