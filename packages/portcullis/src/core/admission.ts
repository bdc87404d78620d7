/**
 * How an agent becomes a session, the same for every protocol: its token verified, its access to
 * the connection checked (each refusal counted, logged and kept as a rate-limited audit record),
 * containment's say (a revoked identity, a frozen connection), then the session's record written
 * ahead of any byte to the target, counted, and watched for new client addresses. The session's
 * close undoes what opening it did (an approval it holds is cancelled, the gauge goes down), so a
 * protocol cannot forget one half.
 *
 * The three steps are separate because protocols interleave their own wire between them (PostgreSQL
 * answers AuthenticationOk only after verify, and refuses in its own words after authorize).
 */
import type { ConnectionConfig } from "../config/schema.js";
import { PortcullisError, isPortcullisError } from "../errors.js";
import type { Principal, RunContext } from "../identity/principal.js";
import type { Protocol } from "../store/store.js";
import { authorizeConnection } from "./access.js";
import type { GatewayContext } from "./context.js";
import type { OpenSessionInput, Session } from "./sessions.js";

/** Where an agent connects from. */
export interface AgentEndpoint {
  /** The peer's IP address, as the socket reports it. */
  host: string;
  port: number;
}

export interface AdmitInput {
  protocol: Protocol;
  connection: ConnectionConfig;
  principal: Principal;
  client: AgentEndpoint;
  runHints?: RunContext;
  terminate: OpenSessionInput["terminate"];
}

export function endpointOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): AgentEndpoint {
  return { host: socket.remoteAddress ?? "?", port: socket.remotePort ?? 0 };
}

function addressOf(client: AgentEndpoint): string {
  return `${client.host}:${client.port}`;
}

export class Admission {
  constructor(private readonly ctx: GatewayContext) {}

  /** The principal of a valid token; otherwise E_TOKEN_INVALID, whatever the reason (the reason goes to the log only). */
  async verify(protocol: Protocol, connectionName: string, token: string, client: AgentEndpoint): Promise<Principal> {
    try {
      return await this.ctx.verifier.verify(token);
    } catch (err) {
      const reason = isPortcullisError(err) ? err.code : "E_TOKEN_INVALID";
      this.ctx.metrics.authFailures.inc({ protocol, reason });
      this.ctx.loginRefusals.record({ protocol, connection: connectionName, client: addressOf(client), reason });
      this.ctx.logger.info({ protocol, client: addressOf(client), reason: (err as Error).message }, `${protocol} login refused: invalid token`);
      throw new PortcullisError("E_TOKEN_INVALID", "invalid token");
    }
  }

  /** The connection the principal may use; E_ACCESS_DENIED (the same for an unknown one) otherwise. */
  authorize(protocol: Protocol, principal: Principal, connectionName: string, client: AgentEndpoint): ConnectionConfig {
    try {
      return authorizeConnection(this.ctx.config(), principal, connectionName, protocol as ConnectionConfig["type"]);
    } catch (err) {
      this.ctx.metrics.authFailures.inc({ protocol, reason: "E_ACCESS_DENIED" });
      this.ctx.loginRefusals.record({ protocol, connection: connectionName, client: addressOf(client), reason: "E_ACCESS_DENIED", sub: principal.sub, iss: principal.iss });
      this.ctx.logger.info({ protocol, client: addressOf(client), sub: principal.sub, connection: connectionName }, `${protocol} login refused: no access`);
      throw err;
    }
  }

  /**
   * Containment admits the session (E_REVOKED, E_FROZEN otherwise), its record is committed
   * (E_AUDIT_UNAVAILABLE otherwise), and it is counted and watched. Its close, however it comes,
   * cancels an approval it holds and counts it out.
   */
  async open(input: AdmitInput): Promise<Session> {
    const { protocol, connection, principal, client } = input;
    const clientAddress = addressOf(client);
    this.ctx.containment.admitSession(principal, connection.name, clientAddress);
    const session = await this.ctx.sessions.open({
      protocol,
      connection: connection.name,
      principal,
      clientAddress,
      ...(input.runHints ? { runHints: input.runHints } : {}),
      terminate: input.terminate,
    });
    const labels = { protocol, connection: connection.name };
    this.ctx.metrics.sessionsTotal.inc(labels);
    this.ctx.metrics.sessionsActive.inc(labels);
    session.beforeEnd((reason) => {
      // An approver must not be asked about an operation nobody waits for any more.
      this.ctx.approvals.cancelHeld(session, "the session ended");
      this.ctx.metrics.sessionsActive.dec(labels);
      this.ctx.logger.info({ protocol, session: session.id, reason }, `${protocol} session closed`);
    });
    this.ctx.logger.info({ protocol, session: session.id, sub: principal.sub, connection: connection.name, client: clientAddress }, `${protocol} session opened`);
    this.ctx.detections.sessionOpened(session, client.host);
    return session;
  }
}
