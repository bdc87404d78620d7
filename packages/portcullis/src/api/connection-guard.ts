/**
 * The HTTP listener under the same connection limits as PostgreSQL's (core/connection-limits.ts).
 * On HTTP every request carries its own token, so a connection counts as unauthenticated until one
 * of its requests has presented a token the gateway verified (an agent's on /c/, an admin's on /api/,
 * the scrape token on /metrics): headers alone prove nothing, and a request without a token, or with
 * a bad one, must not take a place among the authenticated. Until then `authentication_timeout` runs,
 * over everything the connection does, a request in flight included: a client that sends a tokenless
 * request and trickles its body is closed at the deadline. Any request that does not authenticate
 * (no token, a bad one, /healthz) ends its connection after its answer (Connection: close): a
 * keep-alive request cannot live on another one's token, pipelined or not. Every request, authenticated
 * or not, must arrive whole (headers and body) within `request_timeout`, counted from its first
 * byte whether or not it has been answered yet, or it is answered 408 and its connection closed: a
 * token holder trickling a body (or the body of a request already refused 413) must not keep a
 * descriptor for ever. Node enforces that (`listenerOptions`; fastify's default is no limit), and
 * `requestTimedOut` counts it. A connection past a cap is
 * answered 503 and closed before any byte it sent is parsed, and the hit is counted and logged.
 */
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ConnectionLimits, LimitReporter, SocketRefuser } from "../core/connection-limits.js";
import type { GatewayContext } from "../core/context.js";

const body = JSON.stringify({ error: "too_many_connections", message: "portcullis: connection limit reached; try again later" });
const TOO_MANY = Buffer.from(
  `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
);

const timeoutBody = JSON.stringify({ error: "request_timeout", message: "portcullis: the request did not arrive within request_timeout" });
const badRequestBody = JSON.stringify({ error: "bad_request", message: "portcullis: malformed HTTP request" });

/** How often Node checks request deadlines (its default, 30 s, would let a deadline slip by as much). */
const DEADLINE_CHECK_MS = 1000;

/**
 * Options of the listener's Node server: `request_timeout` over each whole request, and the
 * headers of any request within `authentication_timeout` (both read at start).
 */
export function listenerOptions(gateway: { request_timeout: number; authentication_timeout: number }): ServerOptions {
  return {
    requestTimeout: gateway.request_timeout,
    headersTimeout: Math.min(gateway.request_timeout, gateway.authentication_timeout),
    connectionsCheckingInterval: DEADLINE_CHECK_MS,
  };
}

/** Per guarded connection: what its first authenticated request does (leave the unauthenticated counts, stop the deadline; idempotent). */
const onAuthentication = new WeakMap<Socket, () => void>();
const authenticatedRequests = new WeakSet<IncomingMessage>();

/**
 * Called by whoever verified this request's token (and found the caller neither revoked nor
 * frozen): the request counts as authenticated, and so does its connection from now on.
 */
export function requestAuthenticated(req: IncomingMessage): void {
  authenticatedRequests.add(req);
  onAuthentication.get(req.socket)?.();
}

/** The guard of one listener: `clientError` answers what Node's parser refused (fastify's clientErrorHandler). */
export interface ConnectionGuard {
  clientError(err: Error & { code?: string }, socket: Socket): void;
}

export function guardConnections(server: Server, ctx: GatewayContext): ConnectionGuard {
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
    onAuthentication.set(socket, () => { clearTimeout(deadline); admission.authenticated(); });
    for (const listener of parse) listener.call(server, socket);
  });
  server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    // A request that did not authenticate is answered with Connection: close and its connection
    // ends (said in the answer, so that a client does not send its next request down a socket about
    // to close): after it, a later request cannot live on an earlier one's token, and before the
    // first authentication the deadline would end it anyway. Decided per request, when its answer's
    // headers are written, so pipelining cannot carry one request's token to another.
    // An answer the client leaves unread (ended but not flushed) gets request_timeout, then its
    // connection is closed: a token holder must not hold descriptors with answers nobody reads.
    const end = res.end;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      const unread = setTimeout(() => { if (!res.writableFinished) req.socket.destroy(); }, gateway().request_timeout);
      unread.unref();
      res.once("finish", () => clearTimeout(unread));
      res.once("close", () => clearTimeout(unread));
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.end;
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      if (!authenticatedRequests.has(req)) this.shouldKeepAlive = false;
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.writeHead;
  });
  return {
    clientError(err, socket) {
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const timedOut = err.code === "ERR_HTTP_REQUEST_TIMEOUT";
      if (timedOut) reporter.hit("request_timeout", socket.remoteAddress);
      // Unless an answer is already under way on it, the client hears why.
      const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
      if (socket.writable && !answering) {
        const [status, text] = timedOut ? ["408 Request Timeout", timeoutBody] : err.code === "HPE_HEADER_OVERFLOW" ? ["431 Request Header Fields Too Large", badRequestBody] : ["400 Bad Request", badRequestBody];
        socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
      }
      socket.destroy();
    },
  };
}
