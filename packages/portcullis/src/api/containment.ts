/**
 * The responder's endpoints, for admins only: revocations (/api/revocations), sessions
 * (/api/sessions, kill), and freezes (/api/freezes). Each answers with what it did (how many live
 * sessions were killed), and each action is audited by the core. A revoked admin is refused
 * before anything else (auth.ts), so a revocation cannot be lifted by the person it covers.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import type { GatewayContext } from "../core/context.js";
import { REVOCATION_KINDS } from "../identity/revocations.js";
import type { RevocationKind, Store } from "../store/store.js";
import { authenticateAdmin } from "./auth.js";

const admin = authenticateAdmin;

const bad = (reply: FastifyReply, message: string) => reply.code(400).send({ error: "bad_request", message });

export function registerContainmentRoutes(app: FastifyInstance, ctx: GatewayContext, store: Store): void {
  app.get<{ Querystring: { all?: string } }>("/api/revocations", async (req, reply) => {
    if (!(await admin(ctx, req, reply))) return reply;
    return { revocations: ctx.containment.revocations(req.query.all === "true") };
  });

  app.post<{ Body: { kind?: unknown; value?: unknown; reason?: unknown; expires_at?: unknown } | undefined }>("/api/revocations", async (req, reply) => {
    const who = await admin(ctx, req, reply);
    if (!who) return reply;
    const { kind, value, reason, expires_at: expiresAt } = req.body ?? {};
    if (typeof kind !== "string" || !REVOCATION_KINDS.includes(kind as RevocationKind)) return bad(reply, `kind must be one of ${REVOCATION_KINDS.join(", ")}`);
    if (typeof value !== "string" || value === "") return bad(reply, "value is required");
    if (reason !== undefined && typeof reason !== "string") return bad(reply, "reason must be a string");
    let expires: number | undefined;
    if (expiresAt !== undefined) {
      expires = typeof expiresAt === "string" ? Date.parse(expiresAt) : Number.NaN;
      if (!Number.isFinite(expires) || expires <= Date.now()) return bad(reply, "expires_at must be an ISO time in the future");
    }
    const r = ctx.containment.revoke({ kind: kind as RevocationKind, value, reason: (reason ?? "revoked by an admin").slice(0, 500), by: who.sub, ...(expires !== undefined ? { expiresAt: expires } : {}) });
    return reply.code(201).send({ revocation: r.revocation, killed_sessions: r.killed });
  });

  app.delete<{ Params: { id: string } }>("/api/revocations/:id", async (req, reply) => {
    const who = await admin(ctx, req, reply);
    if (!who) return reply;
    const lifted = ctx.containment.lift(req.params.id, who.sub);
    return lifted ? { revocation: lifted } : reply.code(404).send({ error: "not_found", message: `no active revocation ${req.params.id}` });
  });

  app.get<{ Querystring: { live?: string; sub?: string; connection?: string; limit?: string } }>("/api/sessions", async (req, reply) => {
    if (!(await admin(ctx, req, reply))) return reply;
    const q = req.query;
    const list = store.listSessions({
      ...(q.live !== undefined ? { live: q.live === "true" } : {}),
      ...(q.sub ? { sub: q.sub } : {}),
      ...(q.connection ? { connection: q.connection } : {}),
      limit: q.limit ? Number(q.limit) : 100,
    });
    return { sessions: list };
  });

  app.post<{ Params: { id: string }; Body: { reason?: unknown } | undefined }>("/api/sessions/:id/kill", async (req, reply) => {
    const who = await admin(ctx, req, reply);
    if (!who) return reply;
    const reason = typeof req.body?.reason === "string" ? req.body.reason.slice(0, 500) : "killed by an admin";
    return ctx.containment.killSession(req.params.id, who.sub, reason)
      ? { killed: req.params.id }
      : reply.code(404).send({ error: "not_found", message: `no live session ${req.params.id}` });
  });

  app.get("/api/freezes", async (req, reply) => {
    if (!(await admin(ctx, req, reply))) return reply;
    return { freezes: ctx.containment.freezes() };
  });

  app.post<{ Params: { connection: string }; Body: { reason?: unknown } | undefined }>("/api/freezes/:connection", async (req, reply) => {
    const who = await admin(ctx, req, reply);
    if (!who) return reply;
    const { connection } = req.params;
    if (!ctx.config().connections.some((c) => c.name === connection)) return reply.code(404).send({ error: "not_found", message: `no connection "${connection}"` });
    const reason = typeof req.body?.reason === "string" ? req.body.reason.slice(0, 500) : "frozen by an admin";
    return reply.code(201).send({ connection, killed_sessions: ctx.containment.freeze(connection, reason, who.sub) });
  });

  app.delete<{ Params: { connection: string } }>("/api/freezes/:connection", async (req, reply) => {
    const who = await admin(ctx, req, reply);
    if (!who) return reply;
    return ctx.containment.unfreeze(req.params.connection, who.sub)
      ? { unfrozen: req.params.connection }
      : reply.code(404).send({ error: "not_found", message: `connection "${req.params.connection}" is not frozen` });
  });
}
