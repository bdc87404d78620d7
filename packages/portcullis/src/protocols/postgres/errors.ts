/** How the gateway's own refusals read on the PostgreSQL wire (SPEC §4). */
import type { ErrorCode } from "../../errors.js";
import { type PgErrorSpec, pgError } from "./messages.js";

/** SQLSTATE for each gateway error code; anything unlisted is an internal error. */
const SQLSTATE: Partial<Record<ErrorCode, string>> = {
  E_TOKEN_INVALID: "28P01",
  E_TOKEN_EXPIRED: "28P01",
  E_ACCESS_DENIED: "28000",
  E_CONNECTION_UNKNOWN: "28000",
  E_TLS_REQUIRED: "28000",
  E_PROTOCOL: "08P01",
  E_MESSAGE_TOO_LARGE: "08P01",
  E_UPSTREAM_UNAVAILABLE: "08001",
  E_UPSTREAM_AUTH: "08004",
  E_SESSION_KILLED: "57P01",
  E_AUDIT_UNAVAILABLE: "PX005",
  E_REVOKED: "PX003",
  E_FROZEN: "PX003",
  E_BUDGET_EXCEEDED: "PX004",
  E_OUT_OF_MEMORY: "53200",
};

export function sqlstateFor(code: ErrorCode): string {
  return SQLSTATE[code] ?? "XX000";
}

/** A FATAL ErrorResponse: the session ends after it. */
export function fatal(code: string, message: string, extra: Partial<PgErrorSpec> = {}): Buffer {
  return pgError({ severity: "FATAL", code, message: `portcullis: ${message}`, ...extra });
}
