/**
 * `portcullis policy check`: what the gateway would decide for one request, and how it classified
 * it, as JSON. The way an operator tests rules before deploying them. Exit 0 whatever the
 * decision; non-zero only for a bad config or bad arguments.
 */
import type { Command } from "commander";
import { loadConfig } from "../config/load.js";
import type { ConnectionConfig } from "../config/schema.js";
import { PortcullisError } from "../errors.js";
import { memberOf, type Principal } from "../identity/principal.js";
import type { Operation } from "../policy/decision.js";
import { PolicyEngine } from "../policy/engine.js";
import { classifySql, loadSqlParser } from "../policy/sql/classify.js";
import { targetPath } from "../protocols/http/target-path.js";
import { CliError, DEFAULT_CONFIG, action } from "./output.js";

interface CheckOptions {
  config: string;
  connection: string;
  sub: string;
  groups: string;
  sql?: string;
  http?: string;
  ssh?: string;
}

function operationOf(opts: CheckOptions, connection: ConnectionConfig): Operation {
  const given = [opts.sql, opts.http, opts.ssh].filter((v) => v !== undefined).length;
  if (given !== 1) throw new CliError("give exactly one of --sql, --http, --ssh");
  if (opts.sql !== undefined) return { type: "sql", statements: classifySql(opts.sql) };
  if (opts.http !== undefined) return httpOperation(opts.http, connection);
  return { type: "ssh", command: opts.ssh! };
}

/** The request as the HTTP listener judges it: the canonical path, and the connection's path case rule. */
function httpOperation(line: string, connection: ConnectionConfig): Operation {
  const m = /^\s*([A-Za-z]+)\s+(\/\S*)\s*$/.exec(line);
  if (!m) throw new CliError(`--http: expected "METHOD /path", got "${line}"`);
  let path: string;
  try {
    path = targetPath(`/c/${connection.name}${m[2]!}`, connection.name).judged;
  } catch (err) {
    if (err instanceof PortcullisError) throw new CliError(`--http: the gateway refuses this path before any rule (400): ${err.message}`);
    throw err;
  }
  const caseSensitive = connection.type === "http" && connection.paths_case_sensitive;
  return { type: "http", method: m[1]!.toUpperCase(), path, headers: {}, ...(caseSensitive ? { pathsCaseSensitive: true } : {}) };
}

export function registerPolicy(program: Command): void {
  const policy = program.command("policy").description("test rules before deploying them");
  policy
    .command("check")
    .description("print the decision and classification for one request as JSON")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .requiredOption("--connection <name>", "connection the request goes to")
    .requiredOption("--sub <subject>", "subject of the requesting identity")
    .option("--groups <list>", "comma-separated groups of the identity", "")
    .option("--sql <query>", "a SQL string (may hold several statements)")
    .option("--http <request>", "an HTTP request line, e.g. 'POST /v1/refunds/42'")
    .option("--ssh <command>", "an SSH exec command or shell line")
    .action(action(async (opts: CheckOptions) => {
      const cfg = loadConfig(opts.config);
      const connection = cfg.connections.find((c) => c.name === opts.connection);
      if (!connection) throw new CliError(`--connection: no connection named "${opts.connection}" in ${opts.config}`);
      await loadSqlParser();
      const op = operationOf(opts, connection);
      const principal: Principal = {
        sub: opts.sub,
        groups: opts.groups.split(",").map((g) => g.trim()).filter(Boolean),
        iss: "portcullis-policy-check",
        exp: Math.floor(Date.now() / 1000) + 3600,
        run: {},
      };
      const decision = new PolicyEngine(cfg.rules).decide(principal, connection.name, op);
      const access = memberOf(principal, connection.access);
      const out = {
        decision: access ? decision.action : "deny",
        rule: access ? decision.rule ?? null : null,
        ...(access ? (decision.message ? { message: decision.message } : {}) : { message: `no access: the identity is in none of the groups of connection "${connection.name}"` }),
        access,
        ...(op.type === "sql"
          ? {
              statements: op.statements.map((s, i) => ({
                kind: s.kinds[0],
                kinds: s.kinds,
                tables: s.tables,
                functions: s.functions,
                decision: decision.statements?.[i]?.action,
                rule: decision.statements?.[i]?.rule ?? null,
                ...(s.error ? { error: s.error } : {}),
              })),
            }
          : {}),
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    }));
}
