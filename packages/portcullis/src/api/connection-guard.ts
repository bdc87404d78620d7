/**
 * The HTTP listener under the same connection limits as PostgreSQL's (core/connection-limits.ts).
 * On HTTP every request carries its own token, so a connection counts as unauthenticated until its
 * first request's headers have arrived: that is what a stalled or slow client withholds. Such a
 * connection gets `authentication_timeout` to send them. A connection past a cap is answered 503 and
 * closed before any byte it sent is parsed, and the hit is counted and logged like PostgreSQL's.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { ConnectionLimits, LimitReporter, SocketRefuser } from "../core/connection-limits.js";
import type { GatewayContext } from "../core/context.js";

const body = JSON.stringify({ error: "too_many_connections", message: "portcullis: connection limit reached; try again later" });
const TOO_MANY = Buffer.from(
  `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
);

export function guardConnections(server: Server, ctx: GatewayContext): void {
  const gateway = () => ctx.config().gateway;
  const open = ctx.metrics.connectionsOpen;
  const limits = new ConnectionLimits(
    () => ({ maxConnections: gateway().max_connections, maxUnauthenticated: gateway().max_unauthenticated, maxUnauthenticatedPerSource: gateway().max_unauthenticated_per_source }),
    (total, unauthenticated) => {
      open.set({ protocol: "http", state: "unauthenticated" }, unauthenticated);
      open.set({ protocol: "http", state: "authenticated" }, total - unauthenticated);
    },
  );
  const reporter = new LimitReporter("http", ctx.metrics, ctx.logger);
  const refuser = new SocketRefuser();
  // Node's HTTP server attaches its parser in a 'connection' listener of its own; it runs only for
  // connections the limits admit, so a refused one never has a byte parsed or a request routed.
  const parse = server.listeners("connection") as ((socket: Socket) => void)[];
  server.removeAllListeners("connection");
  const firstRequest = new WeakMap<Socket, () => void>();
  server.on("connection", (socket: Socket) => {
    const admission = limits.admit(socket.remoteAddress);
    if (typeof admission === "string") {
      reporter.hit(admission, socket.remoteAddress);
      refuser.refuse(socket, TOO_MANY);
      return;
    }
    socket.once("close", () => admission.release());
    const deadline = setTimeout(() => {
      reporter.hit("authentication_timeout", socket.remoteAddress);
      socket.destroy();
    }, gateway().authentication_timeout);
    deadline.unref();
    firstRequest.set(socket, () => { clearTimeout(deadline); admission.authenticated(); });
    socket.once("close", () => clearTimeout(deadline));
    for (const listener of parse) listener.call(server, socket);
  });
  // Before the application sees the request, so it is counted as it will be handled.
  server.prependListener("request", (req) => {
    const started = firstRequest.get(req.socket);
    if (!started) return;
    firstRequest.delete(req.socket);
    started();
  });
}
