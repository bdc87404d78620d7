/**
 * HTTP targets: a reverse proxy per connection under /c/<connection>/ on the gateway's HTTP
 * listener. Each request is a session of its own: the agent's bearer token is verified, the
 * request is judged by policy (`when.http`), audited before it is forwarded, sent to the target
 * with the connection's credentials instead of the token, and the response is masked (JSON by key
 * and value, text by detectors; compressed bodies decoded and sent identity-encoded) and recorded.
 *
 * Outcomes in HTTP's words (SPEC §4): denied 403, approval required (defer) 428, approval denied or
 * expired 403, revoked/frozen 401, budget exceeded 429, audit unavailable 503, bad token 401.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { StringDecoder } from "node:string_decoder";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import type { HttpConnection } from "../../config/schema.js";
import { Admission, type AgentEndpoint, endpointOf } from "../../core/admission.js";
import type { GatewayContext } from "../../core/context.js";
import { type Refusal, type Session, endReasonFor } from "../../core/sessions.js";
import { bearerToken } from "../../identity/bearer.js";
import { httpOperationKeys } from "../../approvals/keys.js";
import { type ErrorCode, PortcullisError, isPortcullisError } from "../../errors.js";
import type { Principal } from "../../identity/principal.js";
import { UNDECIDABLE_BODY_RULE } from "../../policy/decision.js";
import { bodyKind, contentDecoders, decodeContent, readBody, readRequestBody } from "./body.js";
import { readJsonBody } from "./json-body.js";
import { CredentialInjector } from "./credentials.js";
import { requestHeadersForTarget, responseHeadersForAgent, runHintsOf } from "./headers.js";
import { type HttpMasking, httpMasking } from "./masking.js";
import { lineStream, sseStream } from "./streams.js";
import { type TargetPath, targetPath } from "./target-path.js";
import { MCP_ERRORS, type McpRequest, parseMcp, rpcErrorBody } from "./mcp.js";
import { type ApprovedRequest, approvalText, boundHeaders } from "./approval-view.js";
import { requestAuthenticated } from "../../api/connection-guard.js";

/** Status and error word for each gateway error code. */
const STATUS: Partial<Record<ErrorCode, [number, string]>> = {
  E_TOKEN_INVALID: [401, "unauthorized"],
  E_TOKEN_EXPIRED: [401, "unauthorized"],
  E_ACCESS_DENIED: [403, "forbidden"],
  E_REVOKED: [401, "revoked"],
  E_FROZEN: [401, "frozen"],
  E_SESSION_KILLED: [503, "session_killed"],
  E_BUDGET_EXCEEDED: [429, "budget_exceeded"],
  E_AUDIT_UNAVAILABLE: [503, "audit_unavailable"],
  E_MESSAGE_TOO_LARGE: [413, "too_large"],
  E_UPSTREAM_UNAVAILABLE: [502, "bad_gateway"],
  E_UPSTREAM_AUTH: [502, "bad_gateway"],
  E_PROTOCOL: [502, "bad_gateway"],
};

/** Masked bodies up to this size (by Content-Length) are masked whole; larger or unsized ones stream. */
const BUFFERED_MASKING = 1024 * 1024;

class Answer extends Error {
  constructor(readonly status: number, readonly body: Record<string, unknown>) {
    super(String(body.error));
  }
}

/** A JSON-RPC answer (HTTP 200) in place of a refusal. */
class RpcAnswer extends Answer {
  constructor(readonly text: string) {
    super(200, {});
  }
}

export class HttpTargets {
  private readonly agents = new Map<string, { config: HttpConnection; agent: Agent }>();
  private readonly credentials = new CredentialInjector();
  private readonly admission: Admission;
  private readonly toTargetBytes;
  private readonly toClientBytes;

  constructor(private readonly ctx: GatewayContext) {
    this.admission = new Admission(ctx);
    this.toTargetBytes = ctx.metrics.bytes.labels("http", "to_target");
    this.toClientBytes = ctx.metrics.bytes.labels("http", "to_client");
  }

  register(app: FastifyInstance): void {
    void app.register(async (scope) => {
      // Bodies are read by the proxy itself (with the connection's limit), never parsed by fastify.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
      const handler = (req: FastifyRequest<{ Params: { connection: string; "*"?: string } }>, reply: FastifyReply) => {
        reply.hijack();
        void this.handle(req.params.connection, req.raw, reply.raw);
      };
      scope.all("/c/:connection", handler);
      scope.all("/c/:connection/*", handler);
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.agent.close()));
    this.agents.clear();
  }

  private async handle(name: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let session: Session | undefined;
    const client = endpointOf(req.socket);
    const abort = new AbortController();
    let endReason = "client_closed";
    // The agent leaving ends the request: the target's answer is no longer wanted.
    let clientGone = false;
    const gone = () => {
      if (res.writableFinished || clientGone) return;
      clientGone = true;
      abort.abort();
      // An approver must not be asked about a request nobody waits for any more.
      if (session) this.ctx.approvals.cancelHeld(session, "the client left");
    };
    // A pipelined request waiting its turn gets no 'close' of its response when the socket dies: the socket's counts too.
    res.once("close", gone);
    req.socket.once("close", gone);
    try {
      const principal = await this.authenticate(req, name, client);
      const connection = this.admission.authorize("http", principal, name, client) as HttpConnection;
      session = await this.admission.open({
        protocol: "http",
        connection,
        principal,
        client,
        runHints: runHintsOf(req.headers),
        terminate: (reason, code) => {
          endReason = endReasonFor(code, reason);
          abort.abort();
          if (!res.headersSent) send(res, ...statusOf(code, code === "E_TOKEN_EXPIRED" ? "token expired" : "session ended"));
          else res.destroy();
        },
      });
      requestAuthenticated(req);
      await this.proxy(session, connection, this.pathOf(req, connection), req, res, abort.signal);
      endReason = abort.signal.aborted ? endReason : "completed";
    } catch (err) {
      if (err instanceof RpcAnswer) send(res, 200, {}, err.text);
      else if (err instanceof Answer) send(res, err.status, err.body);
      else if (isPortcullisError(err)) {
        if (err.code === "E_PROTOCOL" || err.code === "E_MESSAGE_TOO_LARGE") this.ctx.metrics.protocolErrors.inc({ protocol: "http" });
        send(res, ...statusOf(err.code, err.code === "E_TOKEN_INVALID" ? "invalid token" : err.message));
      } else if (clientGone || req.destroyed) {
        this.ctx.logger.debug({ connection: name, err: (err as Error).message }, "http client left mid-request");
      } else if (!abort.signal.aborted) {
        this.ctx.logger.error({ err, connection: name }, "http request failed");
        send(res, 502, { error: "bad_gateway", message: "the target could not be reached" });
      }
      if (!clientGone) endReason = abort.signal.aborted ? endReason : `error: ${isPortcullisError(err) ? err.code : err instanceof Answer ? err.status : "internal"}`;
    } finally {
      req.socket.off("close", gone);
      session?.close(endReason);
    }
  }

  /** The canonical target path; a path the rules could not judge reliably is the agent's error (400). */
  private pathOf(req: IncomingMessage, connection: HttpConnection): TargetPath {
    try {
      return targetPath(req.url ?? "", connection.name);
    } catch (err) {
      throw new Answer(400, { error: "bad_request", message: (err as Error).message });
    }
  }

  private async authenticate(req: IncomingMessage, name: string, client: AgentEndpoint): Promise<Principal> {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw new Answer(401, { error: "unauthorized", message: "a bearer token is required" });
    return this.admission.verify("http", name, token, client);
  }

  private async proxy(session: Session, connection: HttpConnection, target: TargetPath, req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const path = target.judged;
    const body = await readRequestBody(req, connection.max_request_body);
    const method = (req.method ?? "GET").toUpperCase();
    // Rules judge the headers the target will get: a header the agent names in Connection (hop-by-hop)
    // or one the gateway sets itself must not satisfy a rule the target never sees it for.
    const headers = requestHeadersForTarget(req.headers);
    headers["x-forwarded-for"] = req.socket.remoteAddress ?? "";
    headers["x-forwarded-proto"] = "encrypted" in req.socket ? "https" : "http";
    if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
    const opHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) opHeaders[k] = Array.isArray(v) ? v.join(", ") : v;
    // Read once, whatever the Content-Type says: a target may parse any body as JSON (json-body.ts).
    const reading = readJsonBody(req.headers, body);
    // Any method with a body: a target may route them all to its JSON-RPC handler.
    const mcpBody = connection.mcp === true && body.length > 0;
    const mcp = mcpBody && reading.kind === "json" ? parseMcp(reading.value) : undefined;
    const decision = this.ctx.policy().decide(session.principal, connection.name, {
      type: "http", method, path, headers: opHeaders,
      ...(connection.paths_case_sensitive ? { pathsCaseSensitive: true } : {}),
      ...(mcp?.calls.length ? { mcp: mcp.calls } : {}),
      ...(reading.kind === "json" ? { body: reading.value } : {}),
      ...(reading.kind === "undecidable" ? { undecidable: { reason: reading.reason, mcp: mcpBody } } : {}),
      ...(mcp?.unreadable ? { undecidable: { reason: mcp.unreadable, mcp: true } } : {}),
    });
    const masking = httpMasking(this.ctx.config(), connection.name, this.ctx.maskingKey);
    const requestText = body.length > 0 && bodyKind(req.headers["content-type"]) !== "binary" ? body.toString("utf8") : undefined;
    const summary = mcp?.calls.length ? `${method} ${path} tools/call ${mcp.calls.map((c) => c.tool).join(", ")}` : `${method} ${path}`;
    const ticket = session.decided({
      operation: { type: "http", summary, kinds: [method] },
      action: decision.action,
      ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
    });
    if (requestText !== undefined) session.recordMessage({ e: "notice", text: `request body: ${kept(session, maskAs(masking, req.headers["content-type"], requestText)).text}` });
    let durable = ticket.durable;
    try {
      if (ticket.refusal) throw refusalAnswer(ticket.refusal);
      if (decision.rule === UNDECIDABLE_BODY_RULE) throw new Answer(400, { error: "undecidable_body", message: decision.message });
      if (decision.action === "deny") {
        throw new Answer(403, { error: "denied", rule: decision.rule, ...(decision.message ? { message: decision.message } : {}) });
      }
      if (decision.action === "approve") {
        // A client already gone (a pipelined request behind a dead socket) asks nobody for approval.
        if (signal.aborted) throw new PortcullisError("E_PROTOCOL", "the client has gone");
        const unreadable = reading.kind === "undecidable" ? reading.reason : mcp?.unreadable;
        durable = (await this.approve(session, connection, decision.rule!, {
          method, target: target.forward, judged: path, forwarded: opHeaders, body,
          ...(unreadable ? { unreadable } : {}), ...(reading.kind === "json" ? { json: reading.value } : {}),
        }, req)).durable;
      }
    } catch (err) {
      // An MCP client hears a refusal of its tool call as a JSON-RPC error, not as a broken transport.
      if (err instanceof Answer && mcp?.calls.length) throw mcpAnswer(mcp, err);
      throw err;
    }
    if (durable) await durable.catch(() => { throw new PortcullisError("E_AUDIT_UNAVAILABLE", "audit log unavailable; request refused (fail closed)"); });

    // From here the request runs at the target until its answer has been sent on (or cut short).
    if (!session.operationStarted()) throw new PortcullisError("E_TOKEN_EXPIRED", "token expired");
    try {
      await this.forward(session, connection, target, method, headers, body, masking, res, signal, ticket.op);
    } finally {
      session.operationFinished();
    }
  }

  private async forward(session: Session, connection: HttpConnection, target: TargetPath, method: string, headers: Record<string, string | string[]>, body: Buffer, masking: HttpMasking, res: ServerResponse, signal: AbortSignal, op: number): Promise<void> {
    const ticket = { op };
    const url = new URL(connection.target.url.replace(/\/+$/, "") + target.forward);
    await this.credentials.apply(connection, headers, url);
    const started = Date.now();
    let upstream;
    try {
      upstream = await this.agentFor(connection).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: method as "GET",
        headers,
        ...(body.length > 0 ? { body } : {}),
        signal,
        headersTimeout: connection.target.timeout,
      });
      this.toTargetBytes.inc(body.length);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new PortcullisError("E_UPSTREAM_UNAVAILABLE", `cannot reach the target of connection "${connection.name}" (${(err as { code?: string }).code ?? (err as Error).name})`);
    }
    const upstreamHeaders = upstream.headers as Record<string, string | string[] | undefined>;
    const contentType = first(upstreamHeaders["content-type"]);
    const kind = bodyKind(contentType);
    const meter = session.meter;

    if (kind === "binary" && masking.active && connection.binary_responses === "refuse") {
      upstream.body.destroy();
      throw new Answer(502, { error: "bad_gateway", message: "the target answered with a body that cannot be masked" });
    }
    if (!masking.active || kind === "binary" || upstream.statusCode === 204 || upstream.statusCode === 304 || method === "HEAD") {
      // Nothing to mask (or binary_responses: pass): the body streams through, counted (and stopped) by budgets as it goes.
      res.writeHead(upstream.statusCode, responseHeadersForAgent(upstreamHeaders));
      let bytes = 0;
      for await (const chunk of upstream.body) {
        const over = meter?.bytes((chunk as Buffer).length);
        if (over) {
          this.ctx.containment.budgetExceeded(session, over);
          res.destroy();
          throw new PortcullisError("E_BUDGET_EXCEEDED", "budget exceeded mid-response");
        }
        bytes += (chunk as Buffer).length;
        await writeOut(res, chunk, this.writeDeadline());
        this.toClientBytes.inc((chunk as Buffer).length);
      }
      res.end();
      session.recordResult({ e: "result", op: ticket.op, rows: [], row_count: 0, bytes, tag: String(upstream.statusCode), ms: Date.now() - started });
      return;
    }
    const length = Number(first(upstreamHeaders["content-length"]) ?? Number.NaN);
    const sse = (contentType ?? "").toLowerCase().startsWith("text/event-stream");
    if (sse || !(length <= BUFFERED_MASKING)) {
      await this.streamMasked(session, ticket.op, upstream, res, masking, kind === "json" && !sse ? "json" : sse ? "sse" : "lines", started);
      return;
    }
    // A small body is masked whole (bounded by max_masked_body; never passed unmasked when larger).
    let raw: Buffer;
    try {
      raw = await readBody(upstream.body, connection.max_masked_body);
    } catch {
      throw new Answer(502, { error: "bad_gateway", message: `the response is larger than max_masked_body (${connection.max_masked_body} bytes) and cannot be masked` });
    }
    const decoded = await decodeContent(raw, first(upstreamHeaders["content-encoding"]), connection.max_masked_body);
    const text = decoded.toString("utf8");
    const recorded = maskAs(masking, contentType, text);
    const out = recorded === text ? decoded : Buffer.from(recorded, "utf8");
    const over = meter?.bytes(out.length);
    if (over) {
      this.ctx.containment.budgetExceeded(session, over);
      throw refusalAnswer({ code: "E_BUDGET_EXCEEDED", message: `budget ${over.budget} exceeded (${over.measure} per hour: ${over.limit})` });
    }
    res.writeHead(upstream.statusCode, { ...responseHeadersForAgent(upstreamHeaders, ["content-length", "content-encoding"]), "content-length": String(out.length) });
    res.end(out);
    this.toClientBytes.inc(out.length);
    const keptText = kept(session, recorded);
    session.recordResult({
      e: "result", op: ticket.op, rows: [[keptText.text]], row_count: 0, bytes: out.length,
      tag: String(upstream.statusCode), ms: Date.now() - started,
      ...(keptText.truncated ? { truncated: true } : {}),
      sha256: createHash("sha256").update(out).digest("hex"),
    });
  }

  /** Masks a body as it streams (a large or unsized JSON document, server-sent events, other text), sent chunked. */
  private async streamMasked(session: Session, op: number, upstream: Dispatcher.ResponseData, res: ServerResponse, masking: HttpMasking, mode: "json" | "sse" | "lines", started: number): Promise<void> {
    const headers = upstream.headers as Record<string, string | string[] | undefined>;
    const decoders = contentDecoders(first(headers["content-encoding"]));
    const masker = mode === "json" ? masking.jsonStream() : mode === "sse" ? sseStream(masking) : lineStream(masking);
    const text = new StringDecoder("utf8");
    const hash = createHash("sha256");
    let bytes = 0;
    let recorded = "";
    // What the recording may keep of this body: recording.max_result_bytes, within what is left of max_session_bytes.
    const cap = session.recorder?.room ?? 0;
    res.writeHead(upstream.statusCode, responseHeadersForAgent(headers, ["content-length", "content-encoding"]));
    const write = async (s: string) => {
      if (!s) return;
      const buf = Buffer.from(s, "utf8");
      const over = session.meter?.bytes(buf.length);
      if (over) {
        this.ctx.containment.budgetExceeded(session, over);
        throw new PortcullisError("E_BUDGET_EXCEEDED", "budget exceeded mid-response");
      }
      hash.update(buf);
      bytes += buf.length;
      if (recorded.length < cap) recorded += s.slice(0, cap - recorded.length);
      await writeOut(res, buf, this.writeDeadline());
      this.toClientBytes.inc(buf.length);
    };
    const source: AsyncIterable<Buffer> = decoders.length ? compose(upstream.body, decoders) : upstream.body;
    try {
      for await (const chunk of source) await write(masker.push(text.write(chunk)));
      await write(masker.push(text.end()));
      await write(masker.end());
    } catch (err) {
      upstream.body.destroy();
      res.destroy();
      throw err;
    }
    res.end();
    session.recorder?.reserve(recorded.length);
    session.recordResult({
      e: "result", op, rows: [[recorded]], row_count: 0, bytes, tag: String(upstream.statusCode), ms: Date.now() - started,
      ...(bytes > cap ? { truncated: true } : {}), sha256: hash.digest("hex"),
    });
  }

  /** approve: a grant the agent holds lets it run; otherwise defer (428, with Prefer: respond-async) or hold. */
  private async approve(session: Session, connection: HttpConnection, rule: string, request: ApprovedRequest, req: IncomingMessage): Promise<{ durable?: Promise<void> }> {
    const defer = /\brespond-async\b/i.test(first(req.headers.prefer) ?? "");
    const headers = boundHeaders(request.forwarded);
    const outcome = this.ctx.approvals.evaluate({
      session,
      connection: connection.name,
      rule,
      operation: { type: "http", text: approvalText(request), view: (mask) => approvalText(request, mask) },
      keys: httpOperationKeys(request.method, request.target, headers, request.body),
      mode: defer ? "defer" : "hold",
    });
    if (outcome.kind === "run") return outcome.durable ? { durable: outcome.durable } : {};
    if (outcome.kind === "limited") throw new Answer(429, { error: "too_many_pending_approvals", message: outcome.message });
    if (outcome.kind === "defer") throw new Answer(428, { error: "approval_required", approval_id: outcome.approval.id, rule });
    const settled = await outcome.settled;
    if (settled.kind === "run") return settled.durable ? { durable: settled.durable } : {};
    throw new Answer(403, { error: `approval_${settled.approval.state}`, approval_id: settled.approval.id, rule, ...(settled.approval.reason ? { message: settled.approval.reason } : {}) });
  }

  /** How long a client may leave a chunk of its answer unread (gateway.request_timeout). */
  private writeDeadline(): number {
    return this.ctx.config().gateway.request_timeout;
  }

  private agentFor(connection: HttpConnection): Agent {
    const cached = this.agents.get(connection.name);
    if (cached && cached.config === connection) return cached.agent;
    void cached?.agent.close();
    const t = connection.target;
    const agent = new Agent({
      connect: {
        timeout: t.connect_timeout,
        ...(t.ca ? { ca: t.ca } : {}),
        ...(t.cert ? { cert: t.cert } : {}),
        ...(t.key ? { key: t.key } : {}),
        rejectUnauthorized: true,
      },
      keepAliveTimeout: 30_000,
    });
    this.agents.set(connection.name, { config: connection, agent });
    return agent;
  }
}

function mcpAnswer(req: McpRequest, a: Answer): Answer {
  const error = String(a.body.error);
  const code = error === "denied" ? MCP_ERRORS.denied : error === "approval_required" ? MCP_ERRORS.approvalRequired
    : error.startsWith("approval_") ? MCP_ERRORS.approvalRefused : MCP_ERRORS.refused;
  const message = error === "denied" ? `portcullis: denied by rule ${String(a.body.rule)}` : `portcullis: ${error}${a.body.approval_id ? ` (approval id ${String(a.body.approval_id)})` : ""}`;
  return new RpcAnswer(rpcErrorBody(req, code, message, a.body));
}

function maskAs(masking: ReturnType<typeof httpMasking>, contentType: string | undefined, text: string): string {
  if (!masking.active) return text;
  return (bodyKind(contentType) === "json" ? masking.json(text) : masking.text(text)) ?? text;
}

function statusOf(code: ErrorCode, message: string): [number, Record<string, unknown>] {
  const [status, error] = STATUS[code] ?? [500, "internal"];
  return [status, { error, message }];
}

function refusalAnswer(r: Refusal): Answer {
  const [status, error] = STATUS[r.code] ?? [403, "denied"];
  return new Answer(status, { error, message: r.message });
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>, raw?: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const text = raw ?? JSON.stringify(body);
  // Tells a client the answer is the gateway's, not the target's (an SDK raises typed errors on it).
  const refusal = typeof body.error === "string" ? { "x-portcullis-refusal": body.error } : {};
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...refusal });
  res.end(text);
}

/**
 * Writes with backpressure. A response whose client has gone never drains: waiting ends on close
 * too, and the write then fails, so the request ends instead of hanging on to the target's body.
 * A client that stays but does not read gets `deadline` ms to take each chunk (request_timeout),
 * then its connection is closed: one that never reads must not hold a connection, a session and
 * the target's answer for ever.
 */
async function writeOut(res: ServerResponse, chunk: Buffer, deadline: number): Promise<void> {
  if (res.destroyed || res.writableEnded) throw new PortcullisError("E_PROTOCOL", "the client has gone");
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    const timer = setTimeout(() => { res.destroy(); done(); }, deadline);
    res.once("drain", done);
    res.once("close", done);
  });
  if (res.destroyed) throw new PortcullisError("E_PROTOCOL", "the client has gone");
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * What the recording keeps of a body: as much as recording.max_result_bytes allows, within what is
 * left of the session's max_session_bytes (spent by what it keeps). Cut short, it ends in "…".
 */
function kept(session: Session, text: string): { text: string; truncated: boolean } {
  const recorder = session.recorder;
  if (!recorder) return { text: "", truncated: text.length > 0 };
  const n = Math.min(text.length, recorder.room);
  recorder.reserve(n);
  return n < text.length ? { text: `${text.slice(0, n)}…`, truncated: true } : { text, truncated: false };
}

/** The body through its decoders, as one readable (errors of any stage end the iteration). */
function compose(body: Readable, decoders: Transform[]): AsyncIterable<Buffer> {
  const last = decoders.at(-1)!;
  pipeline([body, ...decoders], () => {});
  return last;
}
