/**
 * Prometheus metrics at /metrics. They name connections, rules and limits, and their counts tell
 * an outsider what the gateway refuses, so a scrape authenticates: with the scrape token
 * (`gateway.metrics_token`, compared in constant time) or an admin's bearer token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { GatewayContext } from "../core/context.js";
import { bearerToken } from "../identity/bearer.js";
import { authenticateAdmin } from "./auth.js";
import { requestAuthenticated } from "./connection-guard.js";

function sameSecret(a: string, b: string): boolean {
  // Hashes first: equal lengths for timingSafeEqual, and the secret's length is not timed either.
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

export function registerMetricsRoute(app: FastifyInstance, ctx: GatewayContext): void {
  app.get("/metrics", async (req, reply) => {
    const scrapeToken = ctx.config().gateway.metrics_token;
    const presented = bearerToken(req.headers.authorization);
    if (scrapeToken !== undefined && presented !== undefined && sameSecret(presented, scrapeToken)) requestAuthenticated(req.raw);
    else if (!(await authenticateAdmin(ctx, req, reply))) return reply;
    reply.header("content-type", ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}
