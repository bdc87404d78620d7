/**
 * PostgreSQL adapter: a listener that speaks the server side of the protocol to agents and the
 * client side to targets. Per connection: encryption negotiation → startup → the agent's token
 * as a cleartext password → access check → the gateway's own login to the target with vaulted
 * credentials → relay through the message stages until either side ends or the core kills it.
 */
import { createServer, type Server, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { Admission, type AgentEndpoint, endpointOf } from "../../core/admission.js";
import type { GatewayContext } from "../../core/context.js";
import { BufferBudget, type ConnectionSlot, ConnectionLimits, LimitReporter, SocketRefuser } from "../../core/connection-limits.js";
import { type Session, endReasonFor } from "../../core/sessions.js";
import type { PostgresConnection } from "../../config/schema.js";
import { type ErrorCode, PortcullisError, isPortcullisError } from "../../errors.js";
import { RUN_CONTEXT_KEYS, type Principal, type RunContext } from "../../identity/principal.js";
import { CancelKeys } from "./cancel-keys.js";
import { fatal, sqlstateFor } from "./errors.js";
import { AUTH, MSG, decodeParameterStatus, decodePassword, decodeStartupPacket, encode } from "./messages.js";
import { InvalidStartupLength } from "./framer.js";
import { type BackendPids, backendPidStage } from "./backend-pids.js";
import { HandshakeReader } from "./reader.js";
import { type MessageStage, Pump } from "./relay.js";
import { lexerSettingSafe } from "../../policy/sql/lexer-settings.js";
import { parseSearchPath } from "../../policy/sql/search-path.js";
import { MaskingRegistry } from "./masking-registry.js";
import { type Plan as MaskPlan, maskingStage } from "./masking-stage.js";
import { SessionState, stateTracker } from "./session-objects.js";
import { maskedStoreGuard } from "./masked-stores.js";
import { CLIENT_CANCEL, policyStage } from "./policy-stage.js";
import type { ApprovalMode } from "../../core/approval-gate.js";
import { recordingStage } from "./recording-stage.js";
import { containmentStage } from "./containment-stage.js";
import { parseStartupOptions } from "./startup-options.js";
import { cancelUpstream, loginUpstream, type UpstreamSession } from "./upstream.js";

/** A token is a few KB at most; nothing larger is accepted before authentication. */
const MAX_HANDSHAKE_MESSAGE = 64 * 1024;
/** Startup parameters that are the gateway's to set, never the agent's. */
const RESERVED_PARAMS = new Set(["user", "database", "replication"]);
/** What the agent is told when the gateway ends its session; the operator's reason stays in the audit log. */
const TERMINATION: Partial<Record<ErrorCode, string>> = {
  E_REVOKED: "identity revoked",
  E_FROZEN: "connection frozen",
  E_TOKEN_EXPIRED: "token expired",
};
/** A session ended at its token's expiry is told so in the gateway's own class (a login's bad token is 28P01). */
const TERMINATION_SQLSTATE: Partial<Record<ErrorCode, string>> = { E_TOKEN_EXPIRED: "PX003" };

export interface ListenAddress { host: string; port: number }

/** Builds the per-session message stages; later issues add masking, recording here. */
export type StageFactory = (session: Session, connection: PostgresConnection, upstream: UpstreamSession, agent: AgentPreferences, pids: BackendPids) => MessageStage[];

/** What the agent asked of the gateway in its startup options (`-c portcullis.*`). */
export interface AgentPreferences {
  approvalMode: ApprovalMode;
}

/** Recording where it is on, policy on every session, masking where the connection has rules; nearest the agent first. */
function defaultStages(ctx: GatewayContext, masking: MaskingRegistry): StageFactory {
  return (session, connection, upstream, agent, pids) => {
    // Nearest the agent: it records what the agent receives (masked, refusals rewritten).
    const recording = session.recorder ? recordingStage(session) : undefined;
    const initialSearchPath = upstream.searchPath !== undefined ? parseSearchPath(upstream.searchPath) : "unknown";
    const state = new SessionState<MaskPlan>((sql) => ctx.sqlCache.classify(sql), initialSearchPath);
    const m = masking.get(ctx.config(), connection);
    const stages: MessageStage[] = [policyStage({
      session,
      state,
      connection: connection.name,
      policy: ctx.policy,
      cache: ctx.sqlCache,
      initialSearchPath,
      // PostgreSQL skips `$user` when no schema has that name, and so does the gateway.
      targetUser: upstream.userSchema === false ? undefined : connection.credentials.username,
      ...(recording ? { onOperation: recording.onOperation } : {}),
      approvals: ctx.approvals,
      approvalMode: agent.approvalMode,
      ...(m.planner.hasColumnRules ? { maskedStores: maskedStoreGuard(m.planner) } : {}),
    })];
    // On the way out, budgets are charged after masking (what leaves) and before recording (a row
    // that is stopped was never received).
    stages.unshift(containmentStage({
      session,
      bulkReadRows: () => ctx.config().detections.bulk_read_rows,
      onExceeded: (over) => ctx.containment.budgetExceeded(session, over),
      onBulkRead: (rows, command) => ctx.alerts.raise("bulk_read", { session: session.id, sub: session.principal.sub, connection: connection.name, rows, command }, `${session.principal.iss} ${session.principal.sub}`),
    }));
    if (recording) stages.unshift(recording);
    if (!m.planner.inert) stages.push(maskingStage({ planner: m.planner, state, ...(m.text ? { text: m.text } : {}), key: ctx.maskingKey }));
    // Near the target: gateway pids become real ones just before they leave, real ones gateway pids first thing on the way back.
    stages.push(backendPidStage(pids, state, (sql) => ctx.sqlCache.classify(sql).flatMap((i) => i.functions)));
    // Nearest the target: it sees what is really forwarded and the target's answers before any rewrite.
    stages.push(stateTracker(state));
    return stages;
  };
}

/** What the listener hands each connection to keep it within the gateway's limits. */
interface ConnectionGuard {
  slot: ConnectionSlot;
  budget: BufferBudget;
  reporter: LimitReporter;
}

export class PostgresListener {
  private server?: Server;
  private readonly cancelKeys = new CancelKeys();
  private readonly sockets = new Set<Socket>();
  private readonly masking: MaskingRegistry;
  private readonly stages: StageFactory;
  private readonly limits: ConnectionLimits;
  private readonly budget: BufferBudget;
  private readonly reporter: LimitReporter;
  private readonly refuser = new SocketRefuser();
  private readonly admission: Admission;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly address: ListenAddress,
    stages?: StageFactory,
  ) {
    this.masking = new MaskingRegistry(ctx.maskingKey);
    this.admission = new Admission(ctx);
    this.stages = stages ?? defaultStages(ctx, this.masking);
    const gateway = () => ctx.config().gateway;
    const open = ctx.metrics.connectionsOpen;
    this.limits = new ConnectionLimits(
      () => ({ maxConnections: gateway().max_connections, maxUnauthenticated: gateway().max_unauthenticated, maxUnauthenticatedPerSource: gateway().max_unauthenticated_per_source }),
      (total, unauthenticated) => {
        open.set({ protocol: "postgres", state: "unauthenticated" }, unauthenticated);
        open.set({ protocol: "postgres", state: "authenticated" }, total - unauthenticated);
      },
    );
    this.budget = new BufferBudget(() => gateway().max_buffered_bytes, (used) => ctx.metrics.bufferedBytes.set({ protocol: "postgres" }, used));
    this.reporter = new LimitReporter("postgres", ctx.metrics, ctx.logger);
  }

  async start(): Promise<ListenAddress> {
    const server = createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      const slot = this.limits.admit(socket.remoteAddress);
      if (typeof slot === "string") {
        this.reporter.hit(slot, socket.remoteAddress);
        // What PostgreSQL answers when it is full; a client that sent an SSLRequest reads it too (libpq does).
        this.refuser.refuse(socket, fatal("53300", "sorry, too many clients already"));
        return;
      }
      // Counted until the descriptor is closed, however the connection ends.
      socket.once("close", () => slot.release());
      const guard = { slot, budget: this.budget, reporter: this.reporter };
      new FrontendConnection(this.ctx, this.admission, socket, this.address, this.cancelKeys, this.stages, guard).run();
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.address.port, this.address.host, () => { server.off("error", reject); resolve(); });
    });
    const addr = server.address();
    return typeof addr === "object" && addr ? { host: addr.address, port: addr.port } : this.address;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
    await this.masking.close();
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/** One agent connection, from its first byte to its close. */
class FrontendConnection {
  private socket: Socket;
  private session?: Session;
  private upstream?: UpstreamSession;
  private cancelProcessId?: number;
  private pids?: BackendPids;
  private ended = false;
  private clientTerminated = false;
  /** The handshake reader, until the session relays (its buffered bytes are handed to the relay). */
  private reader?: HandshakeReader;
  private readonly clientAddress: string;
  private readonly client: AgentEndpoint;
  /** The one deadline over everything before authentication (gateway.authentication_timeout). */
  private preauthTimer?: NodeJS.Timeout;
  /** Set while the TLS handshake runs: a deadline then cannot be told in PostgreSQL's words. */
  private tlsHandshaking = false;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly admission: Admission,
    socket: Socket,
    private readonly listen: ListenAddress,
    private readonly cancelKeys: CancelKeys,
    private readonly stages: StageFactory,
    private readonly guard: ConnectionGuard,
  ) {
    this.socket = socket;
    this.client = endpointOf(socket);
    this.clientAddress = `${this.client.host}:${this.client.port}`;
    socket.on("error", () => { /* reported through close; errors here are the client's network */ });
    // On the raw TCP socket, so it fires however far the handshake got (TLS wraps this socket).
    socket.once("close", () => this.finish("client_closed"));
    this.preauthTimer = setTimeout(() => this.preauthExpired(socket), ctx.config().gateway.authentication_timeout);
    this.preauthTimer.unref();
    socket.once("close", () => clearTimeout(this.preauthTimer));
  }

  async run(): Promise<void> {
    try {
      const startup = await this.negotiate();
      if (!startup) return;
      const principal = await this.authenticate(startup.encrypted, startup.database);
      this.authenticated();
      const connection = this.authorize(principal, startup.database);
      await this.connect(principal, connection, startup.params);
    } catch (err) {
      this.refuse(err);
    }
  }

  /** Encryption negotiation and the StartupMessage; undefined when the connection was a cancel. */
  private async negotiate(): Promise<{ params: Map<string, string>; database: string; encrypted: boolean } | undefined> {
    // No per-read timeout: the pre-authentication deadline bounds the whole phase.
    let reader = new HandshakeReader(this.socket, MAX_HANDSHAKE_MESSAGE, undefined, this.guard.budget.lease());
    let encrypted = false;
    let gssencAnswered = false;
    for (;;) {
      const packet = decodeStartupPacket(await reader.readStartupPacket());
      if (packet.kind === "cancel") {
        reader.detach();
        await this.cancel(packet.processId, packet.secretKey);
        return undefined;
      }
      // As PostgreSQL: one request of each kind, and none once encryption is on (a loop of them
      // would keep a connection unauthenticated for free).
      if (packet.kind === "gssenc") {
        if (gssencAnswered || encrypted) throw new PortcullisError("E_PROTOCOL", "unexpected GSSENCRequest: encryption was already negotiated");
        gssencAnswered = true;
        this.socket.write("N");
        continue;
      }
      if (packet.kind === "ssl") {
        if (encrypted) throw new PortcullisError("E_PROTOCOL", "unexpected SSLRequest: encryption was already negotiated");
        // Plaintext bytes queued behind SSLRequest would be spliced into the encrypted session (CVE-2021-23214).
        if (reader.pending > 0) throw new PortcullisError("E_PROTOCOL", "unexpected data after SSLRequest");
        reader.detach();
        this.socket.write("S");
        this.socket = await this.upgradeToTls(this.socket);
        encrypted = true;
        reader = new HandshakeReader(this.socket, MAX_HANDSHAKE_MESSAGE, undefined, this.guard.budget.lease());
        continue;
      }
      const { params } = packet;
      const user = params.get("user");
      if (!user) throw new PortcullisError("E_PROTOCOL", "no PostgreSQL user name specified in startup packet");
      if (params.has("replication") && params.get("replication") !== "false") {
        throw new PortcullisError("E_ACCESS_DENIED", "replication connections are not allowed through the gateway");
      }
      if (packet.minor > 0 || packet.unsupportedOptions.length > 0) {
        this.socket.write(encode.negotiateProtocolVersion(0, packet.unsupportedOptions));
      }
      this.reader = reader;
      return { params, database: params.get("database") ?? user, encrypted };
    }
  }


  private async upgradeToTls(socket: Socket): Promise<Socket> {
    const tls = new TLSSocket(socket, { isServer: true, secureContext: this.ctx.serverTls() });
    // From the start: a second error during a handshake cut short must not go unhandled.
    tls.on("error", () => {});
    this.tlsHandshaking = true;
    try {
      await new Promise<void>((resolve, reject) => {
        tls.once("secure", resolve);
        tls.once("error", (err) => reject(new PortcullisError("E_PROTOCOL", `TLS handshake failed: ${err.message}`)));
      });
    } finally {
      this.tlsHandshaking = false;
    }
    return tls;
  }

  /** The agent proved who it is: the pre-authentication deadline and caps no longer apply. */
  private authenticated(): void {
    clearTimeout(this.preauthTimer);
    this.guard.slot.authenticated();
  }

  /** The pre-authentication deadline passed: whatever the connection was doing (TLS handshake, startup, token), it ends. */
  private preauthExpired(raw: Socket): void {
    if (this.ended) return;
    this.guard.reporter.hit("authentication_timeout", raw.remoteAddress);
    this.ctx.logger.info({ client: this.clientAddress }, "postgres login refused: authentication timed out");
    if (this.tlsHandshaking) {
      // Mid-handshake, a PostgreSQL message would be read as garbage TLS: just close.
      this.finish("error: authentication_timeout");
      raw.destroy();
      return;
    }
    // PostgreSQL's words (ProcessInterrupts during ClientAuthentication).
    this.closeWith(fatal("57014", "canceling authentication due to timeout"), "error: authentication_timeout");
  }

  private async authenticate(encrypted: boolean, database: string): Promise<Principal> {
    const cfg = this.ctx.config();
    if (!encrypted && !(isLoopback(this.listen.host) && cfg.identity.dev_issuer)) {
      throw new PortcullisError("E_TLS_REQUIRED", "TLS is required to present a token (connect with sslmode=require)");
    }
    this.socket.write(encode.authentication(AUTH.CleartextPassword));
    const token = decodePassword(await this.reader!.readFrame(MSG.Password));
    // The agent learns only that the token is invalid; the reason goes to the log.
    return this.admission.verify("postgres", database, token, this.client);
  }

  private authorize(principal: Principal, database: string): PostgresConnection {
    return this.admission.authorize("postgres", principal, database, this.client) as PostgresConnection;
  }

  private async connect(principal: Principal, connection: PostgresConnection, clientParams: Map<string, string>): Promise<void> {
    // The agent may have left while its token was being verified: open nothing for it.
    if (this.ended) return;
    const options = parseStartupOptions(clientParams.get("options"));
    const approvalMode = options.gateway.get("approval") ?? "hold";
    if (approvalMode !== "hold" && approvalMode !== "defer") {
      throw new PortcullisError("E_PROTOCOL", `portcullis.approval must be hold or defer, not "${approvalMode.slice(0, 32)}"`);
    }
    const forward = new Map<string, string>();
    for (const [k, v] of clientParams) if (!RESERVED_PARAMS.has(k) && k !== "options") forward.set(k, v);
    if (options.forward) forward.set("options", options.forward);
    for (const [name, value] of [...forward, ...options.settings]) {
      if (!lexerSettingSafe(name, value)) {
        throw new PortcullisError("E_ACCESS_DENIED", `${name}=${value} would make the target read SQL differently from the gateway; connect with standard_conforming_strings on and client_encoding UTF8`);
      }
    }

    const session = await this.admission.open({
      protocol: "postgres",
      connection,
      principal,
      client: this.client,
      runHints: runHints(options.gateway),
      terminate: (reason, code) => this.terminate(TERMINATION_SQLSTATE[code] ?? sqlstateFor(code), TERMINATION[code] ?? `session terminated: ${reason}`, endReasonFor(code, reason)),
    });
    this.session = session;
    if (this.ended) {
      // The agent left while the session was being written.
      session.close("client_closed");
      return;
    }

    const upstream = await loginUpstream({
      connection,
      params: forward,
      maxMessageSize: this.ctx.config().gateway.max_message_size,
      // Table rules that name a schema need to know where unqualified names resolve.
      probeSearchPath: this.ctx.policy().usesSchemas,
    });
    if (this.ended) {
      // The agent left (or was killed) while the gateway was logging in: nothing to relay.
      upstream.socket.destroy();
      return;
    }
    const unsafe = upstream.parameters.find(([name, value]) => !lexerSettingSafe(name, value));
    if (unsafe) {
      upstream.socket.destroy();
      // A configuration fact of the target, not a secret: the agent and the operator both need it.
      throw new PortcullisError("E_PROTOCOL", `the target of connection "${connection.name}" has ${unsafe[0]}=${unsafe[1]}; the gateway cannot read SQL under it (it reads UTF8 with standard_conforming_strings on)`);
    }
    this.upstream = upstream;
    // A cancel while a statement is held for approval cancels the approval; otherwise it goes to the target.
    const owner = { target: `${connection.target.host}:${connection.target.port}`, identity: `${principal.iss}\0${principal.sub}`, realPid: upstream.backendKey.processId };
    const key = this.cancelKeys.issue({
      cancel: () => (this.ctx.approvals.cancelHeld(session, CLIENT_CANCEL) ? Promise.resolve() : cancelUpstream(connection, upstream.backendKey)),
    }, owner);
    this.cancelProcessId = key.processId;
    this.pids = {
      own: { gateway: key.processId, real: owner.realPid },
      realOf: (gatewayPid) => this.cancelKeys.realPid(gatewayPid, owner.target, owner.identity),
      gatewayOf: (realPid) => this.cancelKeys.gatewayPid(realPid, owner.target),
    };

    const hello: Buffer[] = [encode.authentication(AUTH.Ok)];
    for (const [name, value] of upstream.parameters) hello.push(encode.parameterStatus(name, value));
    hello.push(encode.backendKeyData(key.processId, key.secretKey), encode.readyForQuery(upstream.readyStatus));
    this.socket.write(Buffer.concat(hello));

    this.relay(session, connection, upstream, { approvalMode });
  }

  private relay(session: Session, connection: PostgresConnection, upstream: UpstreamSession, agent: AgentPreferences): void {
    // The agent's Terminate makes the target close first; the session still ended by the agent's choice.
    const watchTerminate: MessageStage = { fromClient: () => { this.clientTerminated = true; return undefined; }, clientTypes: [MSG.Terminate] };
    // Should a lexer setting change anyway (a function's SET clause, ALTER ... SET then RESET ALL), end the session.
    const watchSettings: MessageStage = {
      fromServer: (frame) => {
        const [name, value] = decodeParameterStatus(frame);
        if (!lexerSettingSafe(name, value)) {
          queueMicrotask(() => this.terminate("08P01", `${name} changed to ${value}; the gateway cannot read SQL under it`, "error: E_PROTOCOL"));
          return { forward: [] };
        }
        return undefined;
      },
      serverTypes: [MSG.ParameterStatus],
    };
    // Each segment (Query, Sync, FunctionCall) is an operation running until its ReadyForQuery: the
    // core lets running ones finish within the token-expiry grace, and starts none after expiry.
    const watchInFlight: MessageStage = {
      fromClient: () => (session.operationStarted() ? undefined : { forward: [] }),
      clientTypes: [MSG.Query, MSG.Sync, MSG.FunctionCall],
      fromServer: () => {
        session.operationFinished();
        return undefined;
      },
      serverTypes: [MSG.ReadyForQuery],
    };
    const stages = [watchSettings, watchInFlight, ...this.stages(session, connection, upstream, agent, this.pids!), watchTerminate];
    const max = this.ctx.config().gateway.max_message_size;
    const client = this.socket;
    const server = upstream.socket;
    // Labelled children resolved once per session, not per write (this runs on every write).
    const toTargetBytes = this.ctx.metrics.bytes.labels("postgres", "to_target");
    const toClientBytes = this.ctx.metrics.bytes.labels("postgres", "to_client");
    const toServer = new Pump({
      source: client, destination: server, maxMessageSize: max,
      stages: stages.flatMap((s) => (s.fromClient ? [{ hook: s.fromClient, ...(s.clientTypes ? { types: s.clientTypes } : {}) }] : [])),
      replyTo: (bufs) => { for (const b of bufs) client.write(b); },
      onError: (err) => this.protocolFailure(err),
      onBytes: (n) => toTargetBytes.inc(n),
      budget: this.guard.budget,
    });
    const toClient = new Pump({
      source: server, destination: client, maxMessageSize: max,
      // Onion order: the stage nearest the agent on the way in is the last one on the way out.
      stages: [...stages].reverse().flatMap((s) => (s.fromServer ? [{ hook: s.fromServer, ...(s.serverTypes ? { types: s.serverTypes } : {}) }] : [])),
      replyTo: (bufs) => { for (const b of bufs) server.write(b); },
      onError: (err) => this.protocolFailure(err),
      onBytes: (n) => toClientBytes.inc(n),
      budget: this.guard.budget,
    });
    const clientRest = this.reader?.detach();
    this.reader = undefined;
    client.on("data", (chunk: Buffer) => toServer.push(chunk));
    server.on("data", (chunk: Buffer) => toClient.push(chunk));
    client.on("close", () => this.finish("client_closed"));
    server.on("close", () => this.finish("upstream_closed"));
    server.on("error", () => { /* followed by close */ });
    if (clientRest && clientRest.length > 0) toServer.push(clientRest);
    if (upstream.leftover.length > 0) toClient.push(upstream.leftover);
  }

  private async cancel(processId: number, secretKey: number): Promise<void> {
    const target = this.cancelKeys.lookup(processId, secretKey);
    this.socket.end();
    if (!target) {
      this.ctx.logger.info({ client: this.clientAddress }, "postgres cancel request with unknown key ignored");
      return;
    }
    await target.cancel().catch((err: Error) => this.ctx.logger.warn({ err: err.message }, "postgres cancel could not reach target"));
  }

  /** Refusal before or during login: one FATAL ErrorResponse, then close. */
  private refuse(err: unknown): void {
    if (err instanceof InvalidStartupLength) {
      this.ctx.metrics.protocolErrors.inc({ protocol: "postgres" });
      this.ctx.logger.info({ client: this.clientAddress, reason: err.message }, "postgres connection closed: not a startup packet");
      this.closeWith(undefined, "error: E_PROTOCOL");
      return;
    }
    const known = isPortcullisError(err);
    if (!known) this.ctx.logger.error({ err, client: this.clientAddress }, "postgres session failed");
    else if (err.code === "E_PROTOCOL" || err.code === "E_MESSAGE_TOO_LARGE") this.ctx.metrics.protocolErrors.inc({ protocol: "postgres" });
    const code = known ? sqlstateFor(err.code) : "XX000";
    const text = known ? publicMessage(err, this.session?.record.connection) : "internal error";
    this.noteBudget(err);
    if (known && this.session) this.ctx.logger.warn({ session: this.session.id, code: err.code, reason: err.message }, "postgres session failed");
    this.closeWith(fatal(code, text), known ? `error: ${err.code}` : "error: internal");
  }

  /** A session ended because the buffer budget was full: counted and logged as a limit hit. */
  private noteBudget(err: unknown): void {
    if (isPortcullisError(err, "E_OUT_OF_MEMORY")) this.guard.reporter.hit("max_buffered_bytes", this.socket.remoteAddress);
  }

  private protocolFailure(err: Error): void {
    this.ctx.metrics.protocolErrors.inc({ protocol: "postgres" });
    this.ctx.logger.warn({ session: this.session?.id, reason: err.message }, "postgres protocol error");
    const code = isPortcullisError(err) ? sqlstateFor(err.code) : "08P01";
    // A decoder's own error (a RangeError past the end of a message) is not the agent's to read.
    const text = isPortcullisError(err) ? err.message : "invalid message format";
    this.noteBudget(err);
    this.closeWith(fatal(code, text), `error: ${isPortcullisError(err) ? err.code : "E_PROTOCOL"}`);
  }

  /** Ends a live session from the gateway's side (kill, expiry). */
  private terminate(sqlstate: string, message: string, reason: string): void {
    this.ctx.logger.info({ session: this.session?.id, reason }, "postgres session terminated by gateway");
    this.closeWith(fatal(sqlstate, message), reason);
  }

  /** Sends `message` (a FATAL; none for a connection PostgreSQL would close silently) and ends the connection. */
  private closeWith(message: Buffer | undefined, reason: string): void {
    // Read nothing more from a connection being refused or ended.
    this.reader?.detach();
    this.reader = undefined;
    this.socket.pause();
    if (!this.socket.destroyed) {
      if (message) this.socket.end(message);
      else this.socket.end();
      // A client that never reads must not keep the socket open.
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    this.upstream?.socket.destroy();
    this.finish(reason);
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.cancelProcessId !== undefined) this.cancelKeys.release(this.cancelProcessId);
    // The target closing (after the agent's Terminate, or on its own) closes the agent's socket at
    // once: a client that waits for the server's EOF after Terminate must not hang.
    if (reason === "upstream_closed") this.socket.end();
    if (reason === "upstream_closed" && this.clientTerminated) reason = "client_closed";
    if (reason === "client_closed") this.upstream?.socket.destroy();
    else this.upstream?.socket.end();
    this.session?.close(reason);
  }
}

function runHints(settings: Map<string, string>): RunContext {
  const hints: RunContext = {};
  for (const key of RUN_CONTEXT_KEYS) {
    const v = settings.get(key);
    if (v) hints[key] = v.slice(0, 256);
  }
  return hints;
}

/** What the agent may read about a failure: never upstream detail beyond the connection name. */
function publicMessage(err: PortcullisError, connection?: string): string {
  switch (err.code) {
    case "E_UPSTREAM_UNAVAILABLE": return `cannot reach the target of connection "${connection}"`;
    case "E_UPSTREAM_AUTH": return `the target of connection "${connection}" refused the gateway's login`;
    case "E_TOKEN_INVALID": case "E_TOKEN_EXPIRED": return "invalid token";
    default: return err.message;
  }
}
