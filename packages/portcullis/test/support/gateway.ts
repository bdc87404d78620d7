/**
 * Test harness: a real PostgreSQL (LocalPostgres) behind a real gateway on free loopback ports,
 * with logs captured so tests can grep them for secrets.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parseConfig } from "../../src/config/load.js";
import { DevIssuer } from "../../src/identity/dev-issuer.js";
import { LocalPostgres } from "../../src/quickstart/local-postgres.js";
import { type Gateway, startGateway } from "../../src/server.js";
import { METRICS_TOKEN } from "./metrics.js";

export const UPSTREAM_USER = "app_user";
/** Distinctive so a leak is unmistakable in any byte stream. */
export const UPSTREAM_PASSWORD = "S3cr3t-upstream-pa55word-QX7";

export interface TestTarget {
  pg: LocalPostgres;
  stop(): Promise<void>;
}

/** A PostgreSQL with database `app` owned by an application user that logs in with SCRAM. */
export async function startTarget(opts: { authMethod?: "scram-sha-256" | "md5" | "trust"; ssl?: boolean; settings?: Record<string, string> } = {}): Promise<TestTarget> {
  const pg = await LocalPostgres.start({
    authMethod: opts.authMethod ?? "scram-sha-256",
    ssl: opts.ssl ?? false,
    ...(opts.settings ? { settings: opts.settings } : {}),
    users: [{ name: UPSTREAM_USER, password: UPSTREAM_PASSWORD }],
    databases: [{ name: "app", owner: UPSTREAM_USER }],
  });
  return { pg, stop: () => pg.stop() };
}

/** A connected client straight to the target's `app` database as the application user: a witness the gateway does not see. */
export async function connectDirect(target: TestTarget): Promise<pg.Client> {
  const client = new pg.Client(target.pg.clientConfig({ name: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, "app"));
  await client.connect();
  return client;
}

export interface TestGateway {
  gw: Gateway;
  host: string;
  port: number;
  httpPort: number;
  dataDir: string;
  /** Every log line written so far. */
  logs: string[];
  issuer: DevIssuer;
  token(sub?: string, groups?: string[], ttlSeconds?: number, claims?: Record<string, unknown>): Promise<string>;
  /** Connection settings for `pg`/psql to reach `connection` through the gateway. */
  clientConfig(token: string, connection?: string): { host: string; port: number; user: string; password: string; database: string };
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  target: TestTarget;
  /** Target TLS mode of the `app` connection. */
  tls?: "disable" | "prefer" | "require" | "verify-full";
  /** Extra top-level config merged over the defaults (e.g. identity issuers). */
  overrides?: Record<string, unknown>;
  connections?: Record<string, unknown>[];
  maxMessageSize?: number;
  /** Extra keys of the `gateway` section (limits), merged over the defaults. */
  gateway?: Record<string, unknown>;
}

export async function startTestGateway(opts: TestGatewayOptions): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-test-"));
  const { pg } = opts.target;
  const raw = {
    gateway: {
      postgres: "127.0.0.1:0",
      http: "127.0.0.1:0",
      data_dir: dataDir,
      log_level: "debug",
      metrics_token: METRICS_TOKEN,
      ...(opts.maxMessageSize ? { max_message_size: opts.maxMessageSize } : {}),
      ...opts.gateway,
    },
    identity: { dev_issuer: true, admins: ["security"] },
    connections: opts.connections ?? [
      {
        name: "app",
        type: "postgres",
        target: {
          host: pg.host, port: pg.port, database: "app", tls: opts.tls ?? "prefer",
          ...(opts.tls === "verify-full" && pg.ssl ? { ca: pg.ssl.certPem, server_name: "localhost" } : {}),
        },
        credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD },
        access: ["agents"],
      },
    ],
    ...opts.overrides,
  };
  const logs: string[] = [];
  const config = parseConfig(raw, join(dataDir, "portcullis.yaml"));
  const gw = await startGateway(config, { logDestination: { write: (line: string) => { logs.push(line); } } });
  const issuer = await DevIssuer.open(dataDir);
  const host = gw.addresses.postgres!.host;
  const port = gw.addresses.postgres!.port;
  return {
    gw, host, port, httpPort: gw.addresses.http!.port, dataDir, logs, issuer,
    token: (sub = "agent-1", groups = ["agents"], ttlSeconds = 600, claims) =>
      issuer.issue({ sub, groups, ttlSeconds, ...(claims ? { claims } : {}) }),
    clientConfig: (token, connection = "app") => ({ host, port, user: "agent", password: token, database: connection }),
    async stop() {
      await gw.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
