/**
 * The HTTP listener under the same connection limits as PostgreSQL's (core/connection-limits.ts).
 * On HTTP every request carries its own token, so a connection counts as unauthenticated until one
 * of its requests has presented a token the gateway verified (an agent's on /c/, an admin's on /api/,
 * the scrape token on /metrics): headers alone prove nothing, and a request without a token, or with
 * a bad one, must not take a place among the authenticated. Until then `authentication_timeout` runs,
 * over everything the connection does, a request in flight included: a client that sends a tokenless
 * request and trickles its body is closed at the deadline. Once authenticated, every later request on
 * the connection must authenticate too, or the connection is closed after that request's answer
 * (a second keep-alive request cannot live on the first one's token). Every request, authenticated
 * or not, must have arrived whole (headers and body) within `request_timeout`, or it is answered 408
 * and its connection closed: a token holder trickling a body must not keep a descriptor for ever
 * (fastify sets no such limit, and Node's checks it only every 30 s). A connection past a cap is
 * answered 503 and closed before any byte it sent is parsed, and the hit is counted and logged.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ConnectionLimits, LimitReporter, SocketRefuser } from "../core/connection-limits.js";
import type { GatewayContext } from "../core/context.js";

const body = JSON.stringify({ error: "too_many_connections", message: "portcullis: connection limit reached; try again later" });
const TOO_MANY = Buffer.from(
  `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
);

/** Per guarded connection: whether a request on it has authenticated, and what to do when one does. */
interface GuardedConnection {
  authenticated: boolean;
  /** Leaves the unauthenticated counts and stops the deadline (once). */
  onFirstAuthentication: () => void;
}

const timeoutBody = JSON.stringify({ error: "request_timeout", message: "portcullis: the request did not arrive within request_timeout" });

const guarded = new WeakMap<Socket, GuardedConnection>();
const authenticatedRequests = new WeakSet<IncomingMessage>();

/**
 * Called by whoever verified this request's token (and found the caller neither revoked nor
 * frozen): the request counts as authenticated, and so does its connection from now on.
 */
export function requestAuthenticated(req: IncomingMessage): void {
  authenticatedRequests.add(req);
  const conn = guarded.get(req.socket);
  if (!conn || conn.authenticated) return;
  conn.authenticated = true;
  conn.onFirstAuthentication();
}

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
    socket.once("close", () => clearTimeout(deadline));
    guarded.set(socket, { authenticated: false, onFirstAuthentication: () => { clearTimeout(deadline); admission.authenticated(); } });
    for (const listener of parse) listener.call(server, socket);
  });
  server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    const arrival = setTimeout(() => {
      if (req.complete) return;
      reporter.hit("request_timeout", req.socket.remoteAddress);
      if (res.headersSent) return void req.socket.destroy();
      res.writeHead(408, { "content-type": "application/json", "content-length": Buffer.byteLength(timeoutBody), connection: "close" });
      res.end(timeoutBody, () => req.socket.destroy());
    }, gateway().request_timeout);
    arrival.unref();
    res.once("close", () => clearTimeout(arrival));
    // Before the first authentication the deadline closes the connection; after it, a request that
    // did not authenticate is answered with Connection: close and its connection ends (said in the
    // answer, so that a client does not send its next request down a socket about to close).
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      if (guarded.get(req.socket)?.authenticated && !authenticatedRequests.has(req)) this.shouldKeepAlive = false;
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.writeHead;
  });
}
