/**
 * Typed errors with stable codes. Tests and users match on `code`, never on message text.
 * Messages must never contain a token, a credential or row data.
 */
export type ErrorCode =
  | "E_CONFIG_INVALID"
  | "E_TOKEN_INVALID"
  | "E_TOKEN_EXPIRED"
  | "E_ACCESS_DENIED"
  | "E_CONNECTION_UNKNOWN"
  | "E_TLS_REQUIRED"
  | "E_PROTOCOL"
  | "E_MESSAGE_TOO_LARGE"
  | "E_UPSTREAM_UNAVAILABLE"
  | "E_UPSTREAM_AUTH"
  | "E_SESSION_KILLED"
  | "E_STORE"
  | "E_AUDIT_UNAVAILABLE"
  | "E_APPROVAL_NOT_FOUND"
  | "E_APPROVAL_FORBIDDEN"
  | "E_APPROVAL_CLOSED"
  | "E_REVOKED"
  | "E_FROZEN"
  | "E_BUDGET_EXCEEDED"
  /** The gateway's buffer budget (gateway.max_buffered_bytes) has no room for what the session would hold. */
  | "E_OUT_OF_MEMORY";

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "PortcullisError";
  }
}

export function isPortcullisError(err: unknown, code?: ErrorCode): err is PortcullisError {
  return err instanceof PortcullisError && (code === undefined || err.code === code);
}
