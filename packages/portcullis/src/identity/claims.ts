/**
 * Turning the claims of an already-verified token into a Principal. Pure functions, no I/O:
 * everything here runs after the signature and the registered claims have been checked.
 */
import type { JWTPayload } from "jose";
import { PortcullisError } from "../errors.js";
import { RUN_CONTEXT_KEYS, type Principal, type RunContext } from "./principal.js";

/** Optional object claim that may carry the run context instead of top-level claims. */
export const RUN_CONTEXT_CLAIM = "portcullis_run";

/**
 * Reads a claim by name; when no claim has that exact name, a dotted name is followed into
 * nested objects. Exact names come first because namespaced claims such as
 * "https://example.com/groups" legitimately contain dots, while Keycloak puts roles at
 * "realm_access.roles".
 */
export function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let value: unknown = payload;
  for (const part of name.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Groups grant access, so anything unexpected yields fewer groups, never an error and never a
 * guess: non-string array items are dropped, any other type gives none.
 */
export function parseGroups(value: unknown): string[] {
  let items: string[];
  if (Array.isArray(value)) items = value.filter((g): g is string => typeof g === "string");
  else if (typeof value === "string") items = value.split(/[\s,]+/);
  else return [];
  return [...new Set(items.map((g) => g.trim()).filter((g) => g.length > 0))];
}

/** Run context from signed claims: top-level claims win over the nested `portcullis_run` object. */
export function parseRunContext(payload: JWTPayload): RunContext {
  const nested = payload[RUN_CONTEXT_CLAIM];
  const inner = nested !== null && typeof nested === "object" && !Array.isArray(nested) ? (nested as Record<string, unknown>) : {};
  const run: RunContext = {};
  for (const key of RUN_CONTEXT_KEYS) {
    const value = nonEmptyString(payload[key]) ?? nonEmptyString(inner[key]);
    if (value !== undefined) run[key] = value;
  }
  return run;
}

export function toPrincipal(payload: JWTPayload, groupsClaim: string): Principal {
  const sub = nonEmptyString(payload.sub);
  // jose only checks that these claims are present; their types are checked here.
  if (sub === undefined) throw new PortcullisError("E_TOKEN_INVALID", 'token "sub" claim is not a non-empty string');
  if (typeof payload.iss !== "string") throw new PortcullisError("E_TOKEN_INVALID", 'token "iss" claim is not a string');
  if (typeof payload.exp !== "number") throw new PortcullisError("E_TOKEN_INVALID", 'token "exp" claim is not a number');
  const principal: Principal = {
    sub,
    groups: parseGroups(claimAt(payload, groupsClaim)),
    iss: payload.iss,
    exp: payload.exp,
    run: parseRunContext(payload),
  };
  const jti = nonEmptyString(payload.jti);
  if (jti !== undefined) principal.jti = jti;
  return principal;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
