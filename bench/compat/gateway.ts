/**
 * The gateway the drivers' suites run through: everything allowed (one rule allowing `unknown`),
 * no masking, each connection one database of the target with its own vaulted login. What fails
 * through it but passes direct is then a difference of the gateway's, not of a policy.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBenchGateway, type BenchGatewayCore } from "../lib/gateway.js";

export interface CompatConnection {
  /** The connection's name: the database name a client asks for. */
  name: string;
  database: string;
  username: string;
  password: string;
}

export async function startAllowAllGateway(target: { host: string; port: number }, connections: CompatConnection[], listen = "127.0.0.1:0"): Promise<BenchGatewayCore> {
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-compat-"));
  return launchBenchGateway({
    gateway: { postgres: listen, data_dir: dataDir, log_level: "warn" },
    identity: { dev_issuer: true },
    connections: connections.map((c) => ({
      name: c.name,
      type: "postgres",
      target: { host: target.host, port: target.port, database: c.database, tls: "disable" },
      credentials: { username: c.username, password: c.password },
      access: ["agents"],
    })),
    rules: [{ name: "tools-may-do-anything", when: { sql: { statements: ["unknown"] } }, action: "allow" }],
  }, dataDir, "warn");
}
