/**
 * Who is calling the admin API: a bearer token from any configured issuer, verified like an
 * agent's, and then held to the same revocations as an agent: a revoked person (by subject, token,
 * group or issuer) can do nothing here, not even lift their own revocation. What a caller may do
 * is decided per route (admins, or an approval's requester and approver groups).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { GatewayContext } from "../core/context.js";
import { clientAddressOf } from "../core/login-refusals.js";
import { isPortcullisError } from "../errors.js";
import { bearerToken } from "../identity/bearer.js";
import { memberOf, type Principal } from "../identity/principal.js";
import { requestAuthenticated } from "./connection-guard.js";

/** The caller's address as sessions record it (host:port). */
export function clientOf(req: FastifyRequest): string {
  return clientAddressOf(req.socket);
}

/** The caller, or undefined after a 401 (no or bad token) or 403 (revoked) has been sent. */
export async function authenticate(ctx: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
  const token = bearerToken(req.headers.authorization);
  if (!token) {
    await reply.code(401).header("www-authenticate", "Bearer").send({ error: "unauthorized", message: "an admin token is required (Authorization: Bearer ...)" });
    return undefined;
  }
  let who: Principal;
  try {
    who = await ctx.verifier.verify(token);
  } catch {
    await reply.code(401).header("www-authenticate", 'Bearer error="invalid_token"').send({ error: "unauthorized", message: "invalid token" });
    return undefined;
  }
  try {
    ctx.containment.admitActor(who, "admin_api", clientOf(req));
  } catch (err) {
    if (!isPortcullisError(err, "E_REVOKED")) throw err;
    // Like an agent, the caller learns that it is revoked, not why.
    await reply.code(403).send({ error: "revoked", message: "identity revoked" });
    return undefined;
  }
  requestAuthenticated(req.raw);
  return who;
}

/** The caller if it is in an admin group (identity.admins), or undefined after a 401 or 403 has been sent. */
export async function authenticateAdmin(ctx: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
  const who = await authenticate(ctx, req, reply);
  if (!who) return undefined;
  if (!memberOf(who, ctx.config().identity.admins)) {
    await reply.code(403).send({ error: "forbidden", message: "admin groups only (identity.admins)" });
    return undefined;
  }
  return who;
}
