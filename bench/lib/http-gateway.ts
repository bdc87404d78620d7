/**
 * A gateway for the HTTP benchmarks, started in this process like bench/lib/gateway.ts starts
 * the PostgreSQL one (dev issuer, production log level `info` by default, logging to a file with
 * synchronous writes as the default stderr destination does), but with only the HTTP listener
 * and `type: http` connections. Each connection reaches `url` with the given credential headers,
 * `access: [agents]`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchGatewayCore, type LogLevel, launchBenchGateway } from "./gateway.js";

export interface HttpBenchConnection {
  name: string;
  /** The target's base URL. */
  url: string;
  /** credentials.headers of the connection. */
  headers?: Record<string, string>;
}

export interface HttpBenchGatewayOptions {
  connections: HttpBenchConnection[];
  /** Top-level `masking:` entries, passed to the config as given (default none). */
  masking?: Record<string, unknown>[];
  logLevel?: LogLevel;
  /** `recording.enabled` (default: the config's default, on). */
  recording?: boolean;
}

export type HttpBenchGateway = BenchGatewayCore & {
  /** http://host:port of the gateway's HTTP listener. */
  base: string;
  /** The config as given to parseConfig (for the record). */
  rawConfig: Record<string, unknown>;
};

export async function startHttpBenchGateway(opts: HttpBenchGatewayOptions): Promise<HttpBenchGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-bench-http-gw-"));
  const logLevel = opts.logLevel ?? "info";
  const raw: Record<string, unknown> = {
    gateway: { http: "127.0.0.1:0", data_dir: dataDir, log_level: logLevel },
    identity: { dev_issuer: true, admins: ["security"] },
    connections: opts.connections.map((c) => ({
      name: c.name,
      type: "http",
      target: { url: c.url },
      ...(c.headers ? { credentials: { headers: c.headers } } : {}),
      access: ["agents"],
    })),
    ...(opts.masking ? { masking: opts.masking } : {}),
    ...(opts.recording !== undefined ? { recording: { enabled: opts.recording } } : {}),
  };
  const core = await launchBenchGateway(raw, dataDir, logLevel);
  const http = core.gw.addresses.http!;
  // Object.assign keeps the core's counter getters live.
  return Object.assign(core, { base: `http://${http.host}:${http.port}`, rawConfig: raw });
}
