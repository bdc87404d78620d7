/**
 * Who is calling the admin API: a bearer token from any configured issuer, verified like an
 * agent's. What they may do is decided per route (admins, or an approval's approver groups).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { GatewayContext } from "../core/context.js";
import { bearerToken } from "../identity/bearer.js";
import type { Principal } from "../identity/principal.js";

/** The caller, or undefined after a 401 has been sent. */
export async function authenticate(ctx: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
  const token = bearerToken(req.headers.authorization);
  if (!token) {
    await reply.code(401).header("www-authenticate", "Bearer").send({ error: "unauthorized", message: "an admin token is required (Authorization: Bearer ...)" });
    return undefined;
  }
  try {
    return await ctx.verifier.verify(token);
  } catch {
    await reply.code(401).header("www-authenticate", 'Bearer error="invalid_token"').send({ error: "unauthorized", message: "invalid token" });
    return undefined;
  }
}
