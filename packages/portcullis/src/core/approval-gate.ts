/**
 * Where an operation that a rule says needs approval meets the approvals service, for every
 * protocol: a grant the requester already holds lets it run (after its use is audited); otherwise
 * an approval is requested and the operation is deferred (the agent retries later) or held (it
 * waits, and runs the moment it is approved). Adapters turn the outcome into their wire's words.
 */
import type { ApprovalOperation, Approval } from "../approvals/approval.js";
import type { ApprovalService } from "../approvals/service.js";
import { printable } from "../approvals/display.js";
import { type OperationKeys, ruleBoundKeys } from "../approvals/keys.js";
import { type RuleConfig, approvalSettings } from "../config/schema.js";
import type { Session } from "./sessions.js";

export type ApprovalMode = "hold" | "defer";

/** Run now, once `durable` (the audit record of the grant's use) resolves. */
export interface RunOutcome {
  kind: "run";
  durable?: Promise<void>;
}

export type GateOutcome =
  | RunOutcome
  /** The requester has approvals.max_pending_per_identity pending already: nothing was asked. */
  | { kind: "limited"; message: string }
  | { kind: "defer"; approval: Approval }
  | { kind: "hold"; approval: Approval; settled: Promise<RunOutcome | { kind: "refused"; approval: Approval }> };

export interface GateRequest {
  session: Session;
  connection: string;
  rule: string;
  /**
   * The operation as recorded; `text` is masked for display by the gate. With `view`, the gate
   * masks only what `view` passes to its masker (the agent's values), never the text around them:
   * a detector's match must not reach across the display and hide what the approver decides on.
   */
  operation: Omit<ApprovalOperation, "display"> & { text: string; view?: (mask: (value: string) => string) => string };
  /** The operation's keys; the gate binds them to `rule`. */
  keys: OperationKeys;
  mode: ApprovalMode;
}

export class ApprovalGate {
  constructor(
    private readonly service: ApprovalService,
    private readonly rules: () => readonly RuleConfig[],
    /** Masks sensitive values in what the approver is shown. */
    private readonly redact: (text: string) => string,
  ) {}

  evaluate(request: GateRequest): GateOutcome {
    const req = { ...request, keys: ruleBoundKeys(request.keys, request.rule) };
    const { session } = req;
    const granted = this.tryGrant(req);
    if (granted) return granted;
    const found = this.rules().find((r) => r.name === req.rule);
    // The policy and the rules are replaced together on reload, so this cannot happen; if it does, fail closed.
    if (!found) throw new Error(`approval rule ${req.rule} is not in the configuration`);
    const rule = approvalSettings(found);
    if (this.service.atPendingLimit(session.principal)) {
      return { kind: "limited", message: "portcullis: too many approvals pending for this identity (approvals.max_pending_per_identity); retry when some are decided" };
    }
    const { text, view, ...op } = req.operation;
    const approval = this.service.request({
      principal: session.principal,
      session: session.id,
      connection: req.connection,
      rule,
      operation: { ...op, display: printable(view ? view(this.redact) : this.redact(text)) },
      ...req.keys,
      mode: req.mode,
    });
    if (req.mode === "defer") return { kind: "defer", approval };
    session.heldApproval = approval.id;
    const settled = this.service.wait(approval.id, rule.hold_timeout).then((a) => {
      session.heldApproval = undefined;
      if (a.state !== "approved") return { kind: "refused" as const, approval: a };
      // The grant the approval just produced is spent by this very operation.
      return this.tryGrant(req) ?? { kind: "refused" as const, approval: { ...a, reason: "the grant was already used" } };
    });
    return { kind: "hold", approval, settled };
  }

  /** Cancels the approval a session is holding on (the client's cancel request, the session's end). */
  cancelHeld(session: Session, reason: string): boolean {
    const id = session.heldApproval;
    if (!id) return false;
    this.service.cancel(id, reason);
    return true;
  }

  private tryGrant(req: GateRequest): RunOutcome | undefined {
    const g = this.service.useGrant(req.session.principal, req.connection, req.keys.onceKey, req.keys.windowKey);
    if (!g) return undefined;
    const durable = req.session.audit({ type: "grant_used", session: req.session.id, data: { grant: g.id, approval: g.approval, kind: g.kind, op: req.session.stats.operations } });
    return durable ? { kind: "run", durable } : { kind: "run" };
  }
}
