/**
 * Typed errors for what the gateway refuses, so a graph can route on them: a denial names its
 * rule, an approval request carries the approval id, a revocation or a spent budget says so.
 * Built from PostgreSQL errors (SQLSTATE, SPEC §4) and from the gateway's HTTP refusals
 * (marked with the X-Portcullis-Refusal header, so a target's own 403 is never mistaken for one).
 */
export class PortcullisError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A rule denied the operation (42501 / 403). */
export class PortcullisDeniedError extends PortcullisError {
  constructor(message: string, readonly rule: string | undefined) {
    super(message, "denied");
  }
}

/** A rule wants a human's approval first (PX001 / 428); `withApproval` turns it into an interrupt. */
export class PortcullisApprovalRequiredError extends PortcullisError {
  constructor(message: string, readonly approvalId: string, readonly rule: string | undefined) {
    super(message, "approval_required");
  }
}

/** The approval was denied, expired or cancelled (PX002 / 403 approval_*). */
export class PortcullisApprovalDeniedError extends PortcullisError {
  constructor(message: string, readonly approvalId: string | undefined, readonly state: string) {
    super(message, "approval_refused");
  }
}

/** The identity was revoked, its token expired, or the connection is frozen (PX003 / 401). */
export class PortcullisRevokedError extends PortcullisError {
  constructor(message: string) {
    super(message, "revoked");
  }
}

/** A budget is spent (PX004 / 429). */
export class PortcullisBudgetExceededError extends PortcullisError {
  constructor(message: string) {
    super(message, "budget_exceeded");
  }
}

/** The gateway cannot write its audit log and refuses work (PX005 / 503). */
export class PortcullisUnavailableError extends PortcullisError {
  constructor(message: string) {
    super(message, "audit_unavailable");
  }
}

const APPROVAL_ID = /approval(?:_id:| id) ([0-9a-f-]{36})/;
const RULE = /(?:denied by rule|required by rule) ([A-Za-z0-9_.-]+)/;

/** The typed error for a PostgreSQL error from the gateway; the error itself when it is not one. */
export function fromPgError(err: unknown): unknown {
  const e = err as { code?: string; message?: string; detail?: string };
  if (!e || typeof e.code !== "string") return err;
  const message = e.message ?? "";
  const text = `${message} ${e.detail ?? ""}`;
  switch (e.code) {
    case "42501": return message.startsWith("portcullis:") ? new PortcullisDeniedError(message, RULE.exec(text)?.[1]) : err;
    case "PX001": return new PortcullisApprovalRequiredError(message, APPROVAL_ID.exec(text)?.[1] ?? "", RULE.exec(text)?.[1]);
    case "PX002": return new PortcullisApprovalDeniedError(message, APPROVAL_ID.exec(text)?.[1], /approval \S+ (\w+)/.exec(message)?.[1] ?? "denied");
    case "PX003": return new PortcullisRevokedError(message);
    case "PX004": return new PortcullisBudgetExceededError(message);
    case "PX005": return new PortcullisUnavailableError(message);
    default: return err;
  }
}

/** The typed error for a refusal the gateway answered over HTTP; undefined for any other response. */
export async function fromHttpRefusal(res: Response): Promise<PortcullisError | undefined> {
  const kind = res.headers.get("x-portcullis-refusal");
  if (!kind) return undefined;
  const body = (await res.clone().json().catch(() => ({}))) as { message?: string; rule?: string; approval_id?: string };
  const message = `portcullis: ${body.message ?? kind}`;
  if (kind === "denied") return new PortcullisDeniedError(message, body.rule);
  if (kind === "approval_required") return new PortcullisApprovalRequiredError(message, body.approval_id ?? "", body.rule);
  if (kind.startsWith("approval_")) return new PortcullisApprovalDeniedError(message, body.approval_id, kind.slice("approval_".length));
  if (kind === "revoked" || kind === "frozen" || kind === "unauthorized") return new PortcullisRevokedError(message);
  if (kind === "budget_exceeded") return new PortcullisBudgetExceededError(message);
  if (kind === "audit_unavailable") return new PortcullisUnavailableError(message);
  return new PortcullisError(message, kind);
}
