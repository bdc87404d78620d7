/**
 * The gateway's own login to a PostgreSQL target with the vaulted credentials: TCP, optional
 * TLS (disable | prefer | require | verify-full, with libpq's meanings), then trust, cleartext,
 * MD5 or SCRAM-SHA-256. What the target says during a failed login is summarised, never
 * forwarded to the agent verbatim.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { PostgresConnection } from "../../config/schema.js";
import { PortcullisError } from "../../errors.js";
import {
  AUTH, MSG, decodeAuthentication, decodeBackendKeyData, decodeErrorFields, decodeParameterStatus, encode,
} from "./messages.js";
import { HandshakeReader } from "./reader.js";
import { dataRowValues } from "./rows.js";
import { ScramClient, md5Password } from "./scram.js";

export interface UpstreamSession {
  socket: Socket;
  /** ParameterStatus values reported by the target during login, in order. */
  parameters: [string, string][];
  backendKey: { processId: number; secretKey: number };
  /** Transaction status byte of the first ReadyForQuery. */
  readyStatus: number;
  /** Bytes after the first ReadyForQuery (normally none). */
  leftover: Buffer;
  tls: boolean;
  /** The session's starting search_path, when it was asked for. */
  searchPath?: string;
  /** Whether the schema `$user` names exists (asked with the search_path). */
  userSchema?: boolean;
}

export interface UpstreamLoginOptions {
  connection: PostgresConnection;
  /** Startup parameters to pass through from the agent (application_name, options, ...). */
  params: Map<string, string>;
  maxMessageSize: number;
  /** Ask the target for the session's search_path after login (role and database defaults apply). */
  probeSearchPath?: boolean;
}

function openSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new PortcullisError("E_UPSTREAM_UNAVAILABLE", `target ${host}:${port} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => { clearTimeout(timer); socket.off("error", onError); resolve(socket); });
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new PortcullisError("E_UPSTREAM_UNAVAILABLE", `target ${host}:${port} unreachable (${err.code ?? err.message})`));
    };
    socket.once("error", onError);
  });
}

async function negotiateTls(socket: Socket, conn: PostgresConnection, timeoutMs: number): Promise<{ socket: Socket; tls: boolean }> {
  const mode = conn.target.tls;
  if (mode === "disable") return { socket, tls: false };
  socket.write(encode.sslRequest());
  const reader = new HandshakeReader(socket, 16, timeoutMs);
  const answer = await reader.readByte();
  // Bytes after 'S' before the TLS handshake would be unauthenticated injected data (CVE-2021-23222).
  const extra = reader.detach();
  if (answer === 0x4e /* N */) {
    if (mode === "prefer") return { socket, tls: false };
    throw new PortcullisError("E_UPSTREAM_UNAVAILABLE", `target refused TLS but the connection requires tls: ${mode}`);
  }
  if (answer !== 0x53 /* S */ || extra.length > 0) throw new PortcullisError("E_PROTOCOL", "unexpected answer to SSLRequest from target");
  const secure = tlsConnect({
    socket,
    servername: conn.target.server_name ?? conn.target.host,
    ...(conn.target.ca ? { ca: conn.target.ca } : {}),
    // libpq semantics: "require" encrypts without verifying; only "verify-full" checks chain and name.
    rejectUnauthorized: mode === "verify-full",
  });
  await new Promise<void>((resolve, reject) => {
    secure.once("secureConnect", resolve);
    secure.once("error", (err) => reject(new PortcullisError("E_UPSTREAM_UNAVAILABLE", `TLS to target failed: ${err.message}`)));
  });
  return { socket: secure, tls: true };
}

export async function loginUpstream(opts: UpstreamLoginOptions): Promise<UpstreamSession> {
  const { connection: conn } = opts;
  const timeout = conn.target.connect_timeout;
  const raw = await openSocket(conn.target.host, conn.target.port, timeout);
  try {
    const { socket, tls } = await negotiateTls(raw, conn, timeout);
    const startup = new Map(opts.params);
    startup.set("user", conn.credentials.username);
    startup.set("database", conn.target.database);
    socket.write(encode.startup(startup));
    const reader = new HandshakeReader(socket, opts.maxMessageSize, timeout);
    const password = conn.credentials.password ?? "";
    let scram: ScramClient | undefined;
    const parameters: [string, string][] = [];
    let backendKey: UpstreamSession["backendKey"] | undefined;

    for (;;) {
      const frame = await reader.readFrame();
      switch (frame.type) {
        case MSG.Authentication: {
          const { code, data } = decodeAuthentication(frame);
          if (code === AUTH.Ok) {
            // A target that skips SCRAM's final step has not proven it knows the password.
            if (scram && !scram.verified) throw new PortcullisError("E_UPSTREAM_AUTH", "target ended SCRAM without proving its identity");
            break;
          }
          if (code === AUTH.CleartextPassword) {
            // Never hand the vaulted password to whoever is listening on an unencrypted link.
            if (!tls) throw new PortcullisError("E_UPSTREAM_AUTH", "target asked for a cleartext password over an unencrypted connection");
            socket.write(encode.password(password));
          }
          else if (code === AUTH.MD5Password) socket.write(encode.password(md5Password(conn.credentials.username, password, data.subarray(0, 4))));
          else if (code === AUTH.SASL) {
            const mechanisms = data.toString("utf8").split("\0").filter(Boolean);
            if (!mechanisms.includes("SCRAM-SHA-256")) throw new PortcullisError("E_UPSTREAM_AUTH", `target offers no supported SASL mechanism (${mechanisms.join(", ")})`);
            scram = new ScramClient(password);
            socket.write(encode.saslInitialResponse(scram.mechanism, scram.initialResponse()));
          } else if (code === AUTH.SASLContinue && scram) socket.write(encode.saslResponse(await scram.respond(data)));
          else if (code === AUTH.SASLFinal && scram) scram.verifyFinal(data);
          else throw new PortcullisError("E_UPSTREAM_AUTH", `target asked for unsupported authentication method ${code}`);
          break;
        }
        case MSG.ParameterStatus:
          parameters.push(decodeParameterStatus(frame));
          break;
        case MSG.BackendKeyData:
          backendKey = decodeBackendKeyData(frame);
          break;
        case MSG.NoticeResponse:
          break;
        case MSG.ErrorResponse: {
          const f = decodeErrorFields(frame);
          throw new PortcullisError("E_UPSTREAM_AUTH", `target refused the gateway's login (SQLSTATE ${f.get("C") ?? "?"})`);
        }
        case MSG.ReadyForQuery: {
          const path = opts.probeSearchPath ? await showSearchPath(socket, reader) : undefined;
          const leftover = reader.detach();
          if (!backendKey) backendKey = { processId: 0, secretKey: 0 };
          return { socket, parameters, backendKey, readyStatus: frame.raw[5] ?? 0x49, leftover, tls, ...path };
        }
        default:
          throw new PortcullisError("E_PROTOCOL", `unexpected message 0x${frame.type.toString(16)} from target during login`);
      }
    }
  } catch (err) {
    raw.destroy();
    throw err;
  }
}

/**
 * Asks a freshly logged-in target connection for its search_path, and whether the schema `$user`
 * stands for exists (PostgreSQL skips it when it does not); undefined if the answer cannot be read.
 */
async function showSearchPath(socket: Socket, reader: HandshakeReader): Promise<{ searchPath: string; userSchema: boolean } | undefined> {
  socket.write(encode.query("SELECT current_setting('search_path'), exists (SELECT FROM pg_catalog.pg_namespace WHERE nspname = current_user)"));
  let value: { searchPath: string; userSchema: boolean } | undefined;
  for (;;) {
    const f = await reader.readFrame();
    if (f.type === MSG.DataRow && f.raw.length >= 7 && f.raw.readInt16BE(5) === 2) {
      const [path, exists] = dataRowValues(f);
      if (path && exists) value = { searchPath: path.toString("utf8"), userSchema: exists.toString("utf8") === "t" };
    }
    if (f.type === MSG.ReadyForQuery) return value;
  }
}

/** Sends a CancelRequest for a backend of the target on a fresh connection. */
export async function cancelUpstream(conn: PostgresConnection, key: { processId: number; secretKey: number }): Promise<void> {
  const socket = await openSocket(conn.target.host, conn.target.port, conn.target.connect_timeout);
  await new Promise<void>((resolve) => {
    socket.end(encode.cancelRequest(key.processId, key.secretKey), () => resolve());
    socket.on("error", () => resolve());
  });
  socket.destroy();
}
