/**
 * An HTTP request as an approval binds it and as its approver reads it. The grant is bound to the
 * method, target, the headers the target will act on and every byte of the body (approvals/keys.ts);
 * the approver is shown the same, facts first so that no channel that shortens the text can drop
 * them: the request line as the target gets it (percent-encoding and all: `/dry%2Drun` is not the
 * route `/dry-run` to every target), the body's size and SHA-256, a warning when the gateway could
 * not read the body as every target would (a duplicate key, a BOM...), the headers, then the body,
 * or, when it cannot be shown as it will be read (binary, content-coded, another charset, longer
 * than the display limit), a plain statement of what is not shown. Nobody approves bytes they
 * were told nothing about.
 */
import { createHash } from "node:crypto";
import { bodyKind } from "./body.js";

/** Body text an approver is shown at most. */
const DISPLAYED_BODY_BYTES = 64 * 1024;

/**
 * Tracing headers: random ids that differ on every attempt and that targets only log. A retry
 * after approval sends new ones, and binding them would make the grant unusable; they are shown
 * by name. X-Forwarded-For and -Proto are the gateway's own (the agent's address). Every other
 * forwarded header, X-Forwarded-Host (the agent's Host) included, is bound.
 */
const PER_ATTEMPT = new Set(["traceparent", "tracestate", "sentry-trace", "x-amzn-trace-id", "x-forwarded-for", "x-forwarded-proto"]);
const perAttempt = (name: string) => PER_ATTEMPT.has(name) || name.startsWith("x-b3-");

/** Header values the approver sees as a size only (they may be the agent's own secrets). */
const SECRET_NAMED = /cookie|token|secret|password|key|auth/i;

/** The forwarded headers an approval is bound to. */
export function boundHeaders(forwarded: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(forwarded)) if (!perAttempt(name)) out[name] = value;
  return out;
}

export interface ApprovedRequest {
  method: string;
  /** Path and query as forwarded to the target. */
  target: string;
  /** The path as the rules read it (decoded), shown when it differs from the forwarded one. */
  judged: string;
  forwarded: Readonly<Record<string, string>>;
  body: Buffer;
  /** Why the gateway could not read the body as every target would (json-body.ts), if it could not. */
  unreadable?: string;
  /** The body as JSON, when it is. */
  json?: unknown;
}

/**
 * What the approver reads, with `mask` applied to each of the agent's values on its own (the path,
 * each header value, each body line), never to the gateway's lines: a detector's match cannot
 * reach from one value into the facts and hide them. The body is quoted ("│ " before each line),
 * so a body cannot pass lines of its own for the gateway's.
 */
export function approvalText(r: ApprovedRequest, mask: (value: string) => string = (v) => v): string {
  const { method, target, forwarded, body } = r;
  const lines = [`${method} ${mask(target)}`];
  const path = target.split("?")[0]!;
  if (r.judged !== path) lines.push(`(the path decoded: ${mask(r.judged)}; targets differ on whether they route the encoded or the decoded form)`);
  if (body.length > 0) lines.push(`[body: ${body.length} bytes, sha256 ${createHash("sha256").update(body).digest("hex")}]`);
  for (const w of warnings(r)) lines.push(`[warning: ${w}]`);
  const unbound: string[] = [];
  for (const name of Object.keys(forwarded).sort()) {
    if (perAttempt(name)) {
      unbound.push(name);
      continue;
    }
    const value = forwarded[name]!;
    lines.push(`${name}: ${SECRET_NAMED.test(name) ? `[not shown: ${Buffer.byteLength(value)} bytes]` : mask(value)}`);
  }
  if (unbound.length) lines.push(`(tracing headers, not bound: ${unbound.join(", ")})`);
  if (body.length === 0) return lines.join("\n");
  const shown = bodyText(forwarded, body);
  const quoted = shown.body === undefined ? [shown.note!] : [...shown.body.split("\n").map((l) => `│ ${mask(l)}`), ...(shown.note ? [shown.note] : [])];
  return `${lines.join("\n")}\n\nbody:\n${quoted.join("\n")}`;
}

/** What could make the target read the request otherwise than the approver reads it. */
function warnings(r: ApprovedRequest): string[] {
  const out: string[] = [];
  if (r.body.length > 0 && r.unreadable && r.unreadable !== "it is not JSON") out.push(`the gateway cannot read this body as every target would: ${r.unreadable}`);
  const query = r.target.includes("?") ? r.target.slice(r.target.indexOf("?") + 1) : "";
  const repeatedQuery = repeatedParams(query);
  if (repeatedQuery.length) out.push(`the query names ${repeatedQuery.join(", ")} more than once: targets take the first, the last or a list`);
  if (/^application\/x-www-form-urlencoded\b/i.test(r.forwarded["content-type"] ?? "")) {
    const repeated = repeatedParams(r.body.toString("utf8"));
    if (repeated.length) out.push(`the form names ${repeated.join(", ")} more than once: targets take the first, the last or a list`);
  }
  const folded = caseVariantKeys(r.json);
  if (folded.length) out.push(`the JSON has keys that differ only in case (${folded.join(", ")}): case-insensitive binders read them as one`);
  return out;
}

function repeatedParams(text: string): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const [k] of new URLSearchParams(text)) (seen.has(k) ? repeated : seen).add(k);
  return [...repeated].slice(0, 5);
}

function caseVariantKeys(value: unknown, out: Set<string> = new Set()): string[] {
  if (Array.isArray(value)) for (const v of value) caseVariantKeys(v, out);
  else if (value !== null && typeof value === "object") {
    const seen = new Map<string, string>();
    for (const [k, v] of Object.entries(value)) {
      const folded = k.toLowerCase();
      if (seen.has(folded) && seen.get(folded) !== k) out.add(`${seen.get(folded)}/${k}`);
      else seen.set(folded, k);
      caseVariantKeys(v, out);
    }
  }
  return [...out].slice(0, 5);
}

function bodyText(headers: Readonly<Record<string, string>>, body: Buffer): { body?: string; note?: string } {
  const contentType = headers["content-type"];
  const coding = (headers["content-encoding"] ?? "").trim().toLowerCase();
  if (coding && coding !== "identity") return { note: `[body in content coding ${coding}, not shown: ${body.length} bytes]` };
  if (bodyKind(contentType) === "binary") return { note: `[binary body (${contentType}), not shown: ${body.length} bytes]` };
  // A target decodes the body in the charset it names (Express: any utf-*, UTF-7 included); shown as UTF-8 it would read otherwise.
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType ?? "")?.[1]?.toLowerCase();
  if (charset && charset !== "utf-8" && charset !== "utf8" && charset !== "us-ascii") return { note: `[body in charset ${charset}, not shown: ${body.length} bytes]` };
  if (body.length <= DISPLAYED_BODY_BYTES) return { body: body.toString("utf8") };
  return {
    body: body.subarray(0, DISPLAYED_BODY_BYTES).toString("utf8"),
    note: `[body clipped for display: the first ${DISPLAYED_BODY_BYTES} of ${body.length} bytes are shown; approving covers all ${body.length} bytes]`,
  };
}
