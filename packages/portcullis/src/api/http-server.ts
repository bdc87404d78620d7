/**
 * The gateway's HTTP listener: health, readiness, Prometheus metrics (authenticated), the admin
 * API, Slack interactivity, e-mailed approval links and the HTTP targets under /c/<connection>/.
 */
import { createServer } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import type { GatewayContext } from "../core/context.js";
import type { ApprovalService } from "../approvals/service.js";
import { registerApprovalLinkRoutes } from "./approval-links.js";
import { type ConnectionGuard, guardConnections, listenerOptions } from "./connection-guard.js";
import { registerApprovalRoutes } from "./approvals.js";
import { registerMetricsRoute } from "./metrics.js";
import { registerContainmentRoutes } from "./containment.js";
import type { Store } from "../store/store.js";
import type { HttpTargets } from "../protocols/http/adapter.js";
import { registerSlackRoutes } from "./slack.js";

export interface HttpApiOptions {
  host: string;
  port: number;
  /** Readiness: every listener up and the store answering. */
  ready: () => { ready: boolean; checks: Record<string, boolean> };
  approvals: ApprovalService;
  store: Store;
  /** HTTP targets under /c/<connection>/ (absent: none configured). */
  httpTargets?: HttpTargets;
}

export async function startHttpApi(ctx: GatewayContext, opts: HttpApiOptions): Promise<{ app: FastifyInstance; port: number }> {
  let guard: ConnectionGuard | undefined;
  const app = Fastify({
    logger: false,
    serverFactory: (handler, options) => {
      const server = createServer(listenerOptions(ctx.config().gateway), handler);
      // As fastify sets it on its own servers: longer than common load balancers' idle timeouts.
      server.keepAliveTimeout = typeof options.keepAliveTimeout === "number" ? options.keepAliveTimeout : 72_000;
      return server;
    },
    clientErrorHandler: (err, socket) => guard!.clientError(err, socket),
  });
  guard = guardConnections(app.server, ctx);
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const r = opts.ready();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? "ready" : "not_ready", checks: r.checks });
  });
  registerMetricsRoute(app, ctx);
  registerApprovalRoutes(app, ctx, opts.approvals);
  registerSlackRoutes(app, ctx, opts.approvals);
  registerApprovalLinkRoutes(app, ctx, opts.approvals);
  registerContainmentRoutes(app, ctx, opts.store);
  opts.httpTargets?.register(app);
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  return { app, port: typeof addr === "object" && addr ? addr.port : opts.port };
}
