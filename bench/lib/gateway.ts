/**
 * The gateway for benchmarks: the same configuration as the integration tests' startTestGateway()
 * (test/support/gateway.ts: dev issuer, loopback listeners, connection `app` → the target with
 * the vaulted app_user credentials), but at the production log level (`info` by default, not the
 * tests' `debug`: at debug the SQL policy stage also builds a literal-free summary of every
 * statement and logs every allow decision, which is test diagnostics, not the data path), and
 * logging to a file with synchronous writes, as the default stderr destination does.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../packages/portcullis/src/config/load.js";
import { DevIssuer } from "../../packages/portcullis/src/identity/dev-issuer.js";
import { type Gateway, type GatewayOptions, startGateway } from "../../packages/portcullis/src/server.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, type TestTarget } from "../../packages/portcullis/test/support/gateway.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface BenchGateway {
  gw: Gateway;
  host: string;
  port: number;
  dataDir: string;
  logFile: string;
  logLevel: LogLevel;
  /** Log lines at warn or above since the last resetCounters(), and the last few of them. */
  warnings: number;
  lastWarnings: string[];
  logLines: number;
  resetCounters(): void;
  token(sub: string, groups: string[], ttlSeconds: number): Promise<string>;
  stop(): Promise<void>;
}

export interface BenchGatewayOptions {
  target: TestTarget;
  logLevel?: LogLevel;
  targetTls?: "disable" | "prefer" | "require";
  /**
   * Relay with no message stage at all (no SQL policy): startGateway's benchmark-only
   * `withoutStagesForBenchmark`, to measure what the stages cost. Gateways without that option
   * ignore it (and then run their stages): check `stageless` on the result.
   */
  withoutStages?: boolean;
  /**
   * Names of the gateway connections to configure (default `["app"]`). Each one reaches the same
   * database `app` of `target` with the same vaulted credentials, `access: [agents]`; a client
   * picks one with its database name (`PGDATABASE=<name>`).
   */
  connections?: string[];
  /** Top-level `masking:` entries, passed to the config as given (default none). */
  masking?: Record<string, unknown>[];
  /**
   * Policy (and masking) on, but no audit record or recording is written and nothing waits for
   * a commit: startGateway's benchmark-only `withoutAuditForBenchmark`, to measure what the
   * write-ahead audit log costs. Pair it with `recording: false`: with recording on, each
   * session's recorder keeps accumulating events that this journal never takes.
   */
  withoutAudit?: boolean;
  /** `recording.enabled` in the config (default: the config's default, which is on). */
  recording?: boolean;
}

export async function startBenchGateway(opts: BenchGatewayOptions): Promise<BenchGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-bench-gw-"));
  const { pg } = opts.target;
  const logLevel = opts.logLevel ?? "info";
  const raw = {
    gateway: { postgres: "127.0.0.1:0", http: "127.0.0.1:0", data_dir: dataDir, log_level: logLevel },
    identity: { dev_issuer: true, admins: ["security"] },
    connections: (opts.connections ?? ["app"]).map((name) => ({
      name,
      type: "postgres",
      target: { host: pg.host, port: pg.port, database: "app", tls: opts.targetTls ?? "prefer" },
      credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD },
      access: ["agents"],
    })),
    ...(opts.masking ? { masking: opts.masking } : {}),
    ...(opts.recording !== undefined ? { recording: { enabled: opts.recording } } : {}),
  };
  const core = await launchBenchGateway(raw, dataDir, logLevel, {
    ...(opts.withoutStages ? { withoutStagesForBenchmark: true } : {}),
    ...(opts.withoutAudit ? { withoutAuditForBenchmark: true } : {}),
  });
  // Object.assign keeps the core's counter getters live.
  return Object.assign(core, { host: core.gw.addresses.postgres!.host, port: core.gw.addresses.postgres!.port });
}

/** What every benchmark gateway offers, whatever it fronts. */
export type BenchGatewayCore = Omit<BenchGateway, "host" | "port">;

/**
 * Starts a gateway from a raw config in `dataDir`, logging to a file with synchronous writes (as the
 * default stderr destination does) and counting warnings; `stop()` removes `dataDir`.
 */
export async function launchBenchGateway(raw: Record<string, unknown>, dataDir: string, logLevel: LogLevel, options: GatewayOptions = {}): Promise<BenchGatewayCore> {
  const logFile = join(dataDir, "gateway.log");
  const fd = openSync(logFile, "a", 0o600);
  const state = { warnings: 0, logLines: 0, lastWarnings: [] as string[] };
  const destination = {
    write(line: string) {
      writeSync(fd, line);
      state.logLines++;
      // pino levels: 40 warn, 50 error, 60 fatal.
      if (/"level":[456]0[,}]/.test(line)) {
        state.warnings++;
        state.lastWarnings.push(line.trim());
        if (state.lastWarnings.length > 5) state.lastWarnings.shift();
      }
    },
  };
  let gw: Gateway;
  try {
    gw = await startGateway(parseConfig(raw, join(dataDir, "portcullis.yaml")), { ...options, logDestination: destination });
  } catch (err) {
    closeSync(fd);
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const issuer = await DevIssuer.open(dataDir);
  let stopped: Promise<void> | undefined;
  return {
    gw,
    dataDir,
    logFile,
    logLevel,
    get warnings() { return state.warnings; },
    get lastWarnings() { return [...state.lastWarnings]; },
    get logLines() { return state.logLines; },
    resetCounters() {
      state.warnings = 0;
      state.logLines = 0;
      state.lastWarnings = [];
    },
    token: (sub, groups, ttlSeconds) => issuer.issue({ sub, groups, ttlSeconds }),
    stop() {
      stopped ??= (async () => {
        try {
          await gw.stop();
        } finally {
          closeSync(fd);
          rmSync(dataDir, { recursive: true, force: true });
        }
      })();
      return stopped;
    },
  };
}
