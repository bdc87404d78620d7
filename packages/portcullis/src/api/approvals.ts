/**
 * /api/approvals: list, show, approve, deny. Anyone who may decide approvals may list them
 * (admins, and members of any approve rule's approver groups); the service enforces who may
 * decide which approval.
 */
import type { FastifyInstance } from "fastify";
import { publicView } from "../approvals/approval.js";
import type { ApprovalService } from "../approvals/service.js";
import type { GatewayContext } from "../core/context.js";
import { isPortcullisError } from "../errors.js";
import { memberOf } from "../identity/principal.js";
import type { ApprovalState } from "../store/store.js";
import { authenticate } from "./auth.js";

const STATES: readonly ApprovalState[] = ["pending", "approved", "denied", "expired", "cancelled"];

export function registerApprovalRoutes(app: FastifyInstance, ctx: GatewayContext, service: ApprovalService): void {
  /** Groups that may see approvals at all. */
  const deciders = () => {
    const cfg = ctx.config();
    return [...cfg.identity.admins, ...cfg.rules.flatMap((r) => r.approvers ?? [])];
  };

  app.get<{ Querystring: { state?: string; limit?: string } }>("/api/approvals", async (req, reply) => {
    const who = await authenticate(ctx, req, reply);
    if (!who) return reply;
    if (!memberOf(who, deciders())) return reply.code(403).send({ error: "forbidden", message: "not an admin or approver" });
    const state = req.query.state as ApprovalState | undefined;
    if (state !== undefined && !STATES.includes(state)) return reply.code(400).send({ error: "bad_request", message: `state must be one of ${STATES.join(", ")}` });
    const limit = req.query.limit !== undefined ? Number(req.query.limit) : 100;
    return { approvals: service.list({ ...(state ? { state } : {}), limit }).map(publicView) };
  });

  app.get<{ Params: { id: string } }>("/api/approvals/:id", async (req, reply) => {
    const who = await authenticate(ctx, req, reply);
    if (!who) return reply;
    const a = service.get(req.params.id);
    // The requester may follow their own request (an SDK waiting to resume); deciders see all.
    const own = a && a.requester.sub === who.sub && a.requester.iss === who.iss;
    if (!own && !memberOf(who, deciders())) return reply.code(403).send({ error: "forbidden", message: "not an admin or approver" });
    return a ? publicView(a) : reply.code(404).send({ error: "not_found", message: `no approval ${req.params.id}` });
  });

  // The requester may withdraw their own pending request (an SDK that learned it is no longer needed).
  app.delete<{ Params: { id: string } }>("/api/approvals/:id", async (req, reply) => {
    const who = await authenticate(ctx, req, reply);
    if (!who) return reply;
    const a = service.get(req.params.id);
    const own = a && a.requester.sub === who.sub && a.requester.iss === who.iss;
    if (!own && !memberOf(who, deciders())) return reply.code(403).send({ error: "forbidden", message: "not an admin or approver" });
    if (!a) return reply.code(404).send({ error: "not_found", message: `no approval ${req.params.id}` });
    if (a.state !== "pending") return reply.code(409).send({ error: "conflict", message: `approval ${a.id} is already ${a.state}` });
    service.cancel(a.id, own ? "withdrawn by the requester" : `cancelled by ${who.sub}`);
    return publicView(service.get(a.id)!);
  });

  for (const decision of ["approve", "deny"] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: unknown } | undefined }>(`/api/approvals/:id/${decision}`, async (req, reply) => {
      const who = await authenticate(ctx, req, reply);
      if (!who) return reply;
      const reason = typeof req.body?.reason === "string" ? req.body.reason.slice(0, 500) : undefined;
      try {
        return publicView(service.decide(req.params.id, who, decision, reason));
      } catch (err) {
        if (isPortcullisError(err, "E_APPROVAL_NOT_FOUND")) return reply.code(404).send({ error: "not_found", message: err.message });
        if (isPortcullisError(err, "E_APPROVAL_FORBIDDEN")) return reply.code(403).send({ error: "forbidden", message: err.message });
        if (isPortcullisError(err, "E_APPROVAL_CLOSED")) return reply.code(409).send({ error: "conflict", message: err.message });
        throw err;
      }
    });
  }
}
