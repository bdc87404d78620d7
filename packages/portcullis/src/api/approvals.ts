/**
 * /api/approvals: list, show, cancel, approve, deny. An approval is visible, and cancellable, only
 * by its requester, members of its rule's approver groups and admins; anyone else is told it does
 * not exist (404), so ids cannot be probed. The service decides who may vote; a revoked caller
 * never gets this far (auth.ts).
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { type Approval, publicView } from "../approvals/approval.js";
import type { ApprovalService } from "../approvals/service.js";
import type { GatewayContext } from "../core/context.js";
import { isPortcullisError } from "../errors.js";
import type { ApprovalState } from "../store/store.js";
import { authenticate } from "./auth.js";

const STATES: readonly ApprovalState[] = ["pending", "approved", "denied", "expired", "cancelled"];

const notFound = (reply: FastifyReply, id: string) => reply.code(404).send({ error: "not_found", message: `no approval ${id}` });

export function registerApprovalRoutes(app: FastifyInstance, ctx: GatewayContext, service: ApprovalService): void {
  /** What callers see: no binding keys, and how many approving votes count now (revoked voters' do not). */
  const view = (a: Approval) => ({ ...publicView(a), counted_approvals: service.countedApprovals(a) });

  app.get<{ Querystring: { state?: string; limit?: string } }>("/api/approvals", async (req, reply) => {
    const who = await authenticate(ctx, req, reply);
    if (!who) return reply;
    const state = req.query.state as ApprovalState | undefined;
    if (state !== undefined && !STATES.includes(state)) return reply.code(400).send({ error: "bad_request", message: `state must be one of ${STATES.join(", ")}` });
    const limit = req.query.limit !== undefined ? Number(req.query.limit) : 100;
    if (!Number.isFinite(limit) || limit < 0) return reply.code(400).send({ error: "bad_request", message: "limit must be a number ≥ 0" });
    return { approvals: service.listFor(who, { ...(state ? { state } : {}), limit }).map(view) };
  });

  app.get<{ Params: { id: string } }>("/api/approvals/:id", async (req, reply) => {
    const who = await authenticate(ctx, req, reply);
    if (!who) return reply;
    const a = service.get(req.params.id);
    return a && service.visibleTo(a, who) ? view(a) : notFound(reply, req.params.id);
  });

  // The requester may withdraw their own pending request (an SDK that learned it is no longer
  // needed); its approvers and admins may cancel it.
  app.delete<{ Params: { id: string } }>("/api/approvals/:id", async (req, reply) => {
    const who = await authenticate(ctx, req, reply);
    if (!who) return reply;
    const a = service.get(req.params.id);
    if (!a || !service.visibleTo(a, who)) return notFound(reply, req.params.id);
    if (a.state !== "pending") return reply.code(409).send({ error: "conflict", message: `approval ${a.id} is already ${a.state}` });
    service.cancel(a.id, service.isRequester(a, who) ? "withdrawn by the requester" : `cancelled by ${who.sub}`);
    return view(service.get(a.id)!);
  });

  for (const decision of ["approve", "deny"] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: unknown } | undefined }>(`/api/approvals/:id/${decision}`, async (req, reply) => {
      const who = await authenticate(ctx, req, reply);
      if (!who) return reply;
      const a = service.get(req.params.id);
      if (!a || !service.visibleTo(a, who)) return notFound(reply, req.params.id);
      const reason = typeof req.body?.reason === "string" ? req.body.reason.slice(0, 500) : undefined;
      try {
        return view(service.decide(a.id, who, decision, reason));
      } catch (err) {
        if (isPortcullisError(err, "E_APPROVAL_NOT_FOUND")) return notFound(reply, a.id);
        if (isPortcullisError(err, "E_APPROVAL_FORBIDDEN")) return reply.code(403).send({ error: "forbidden", message: err.message });
        if (isPortcullisError(err, "E_REVOKED")) return reply.code(403).send({ error: "revoked", message: "identity revoked" });
        if (isPortcullisError(err, "E_APPROVAL_CLOSED") || isPortcullisError(err, "E_FROZEN")) return reply.code(409).send({ error: "conflict", message: err.message });
        throw err;
      }
    });
  }
}
