/**
 * An HTTP request as an approval binds it and as its approver reads it. The grant is bound to the
 * method, target, the headers the target will act on and every byte of the body (approvals/keys.ts);
 * the approver is shown the same: the headers, and the body, or when it cannot be shown whole (binary,
 * or longer than the display limit) its size and SHA-256 with a plain statement that it is not all
 * shown, so nobody approves bytes they were told nothing about.
 */
import { createHash } from "node:crypto";
import { bodyKind } from "./body.js";

/** Body text an approver is shown at most. */
export const DISPLAYED_BODY_BYTES = 64 * 1024;

/**
 * Headers that differ on every attempt without changing what the target does (tracing, the
 * gateway's own forwarding headers): a retry after approval sends new values, and binding them
 * would make the grant unusable. Every other forwarded header is bound.
 */
const PER_ATTEMPT = new Set([
  "traceparent", "tracestate", "baggage", "sentry-trace", "x-request-id", "x-correlation-id", "x-amzn-trace-id",
  "date", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
]);

/** Header values the approver sees as a size only (they may be the agent's own secrets). */
const SECRET_NAMED = /cookie|token|secret|password|key|auth/i;

/** The forwarded headers an approval is bound to. */
export function boundHeaders(forwarded: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(forwarded)) if (!PER_ATTEMPT.has(name) && !name.startsWith("x-b3-")) out[name] = value;
  return out;
}

/** What the approver reads (before the gate masks sensitive values in it). */
export function approvalText(method: string, target: string, headers: Readonly<Record<string, string>>, body: Buffer): string {
  const lines = [`${method} ${target}`];
  for (const name of Object.keys(headers).sort()) {
    const value = headers[name]!;
    lines.push(`${name}: ${SECRET_NAMED.test(name) ? `[not shown: ${Buffer.byteLength(value)} bytes]` : value}`);
  }
  if (body.length === 0) return lines.join("\n");
  const sha256 = createHash("sha256").update(body).digest("hex");
  const contentType = headers["content-type"];
  if (bodyKind(contentType) === "binary") {
    return `${lines.join("\n")}\n\n[binary body (${contentType}), not shown: ${body.length} bytes, sha256 ${sha256}]`;
  }
  if (body.length <= DISPLAYED_BODY_BYTES) return `${lines.join("\n")}\n\n${body.toString("utf8")}\n\n[body: ${body.length} bytes, sha256 ${sha256}]`;
  return `${lines.join("\n")}\n\n${body.subarray(0, DISPLAYED_BODY_BYTES).toString("utf8")}\n\n`
    + `[body clipped for display: the first ${DISPLAYED_BODY_BYTES} of ${body.length} bytes are shown; approving covers all ${body.length} bytes, sha256 ${sha256}]`;
}
