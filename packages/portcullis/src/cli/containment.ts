/**
 * `portcullis revoke`, `revocations list|lift`, `freeze`, `unfreeze`: a responder's commands, through
 * the running gateway's admin API (an admin token in PORTCULLIS_TOKEN).
 */
import type { Command } from "commander";
import { parseDuration } from "../config/units.js";
import type { FreezeRow, RevocationRow } from "../store/store.js";
import { type ApiTarget, callApi } from "./api-client.js";
import { CliError, DEFAULT_CONFIG, action, printResult } from "./output.js";

const api = (c: Command) => c
  .option("-c, --config <file>", "configuration file (for gateway.http)", DEFAULT_CONFIG)
  .option("--url <url>", "the gateway's HTTP address, instead of reading the config")
  .option("--json", "print JSON");

interface RevokeOptions extends ApiTarget {
  subject?: string;
  jti?: string;
  group?: string;
  issuer?: string;
  reason?: string;
  for?: string;
  json?: boolean;
}

const line = (r: RevocationRow) =>
  `${r.id}  ${r.kind}=${r.value}  since ${new Date(r.createdAt).toISOString()} by ${r.createdBy}${r.expiresAt ? `  until ${new Date(r.expiresAt).toISOString()}` : ""}${r.liftedAt ? `  lifted ${new Date(r.liftedAt).toISOString()}` : ""}  (${r.reason})`;

export function registerContainment(program: Command): void {
  api(program.command("revoke").description("revoke an identity, token, group or issuer: its live sessions end now, new ones are refused")
    .option("--subject <sub>", "a subject (sub claim)")
    .option("--jti <id>", "one token (jti claim)")
    .option("--group <g>", "everyone in a group")
    .option("--issuer <iss>", "every token of an issuer")
    .option("--reason <r>", "why (audit log)")
    .option("--for <duration>", "lift by itself after this long, e.g. 24h"))
    .action(action(async (opts: RevokeOptions) => {
      const given = (["subject", "jti", "group", "issuer"] as const).filter((k) => opts[k] !== undefined);
      if (given.length !== 1) throw new CliError("give exactly one of --subject, --jti, --group, --issuer");
      const kind = given[0]!;
      let expires: string | undefined;
      if (opts.for) {
        const ms = parseDuration(opts.for);
        if (!ms) throw new CliError(`--for: expected a duration such as "24h", got "${opts.for}"`);
        expires = new Date(Date.now() + ms).toISOString();
      }
      const r = await callApi<{ revocation: RevocationRow; killed_sessions: number }>(opts, "POST", "/api/revocations", {
        kind, value: opts[kind], ...(opts.reason ? { reason: opts.reason } : {}), ...(expires ? { expires_at: expires } : {}),
      });
      printResult(!!opts.json, r, `revoked ${kind} ${opts[kind]} (${r.revocation.id}); ${r.killed_sessions} live session(s) ended`);
    }));

  const revocations = program.command("revocations").description("revocations in force");
  api(revocations.command("list").description("revocations, newest first").option("--all", "include lifted ones"))
    .action(action(async (opts: ApiTarget & { all?: boolean; json?: boolean }) => {
      const { revocations: list } = await callApi<{ revocations: RevocationRow[] }>(opts, "GET", `/api/revocations${opts.all ? "?all=true" : ""}`);
      printResult(!!opts.json, list, list.length ? list.map(line).join("\n") : "no revocations");
    }));
  api(revocations.command("lift <id>").description("lift a revocation (new sessions are allowed again)"))
    .action(action(async (id: string, opts: ApiTarget & { json?: boolean }) => {
      const r = await callApi<{ revocation: RevocationRow }>(opts, "DELETE", `/api/revocations/${encodeURIComponent(id)}`);
      printResult(!!opts.json, r, `lifted ${r.revocation.kind}=${r.revocation.value}`);
    }));

  api(program.command("freeze").description("end every session to a connection and refuse new ones until unfrozen")
    .requiredOption("--connection <name>", "the connection").option("--reason <r>", "why (audit log)"))
    .action(action(async (opts: ApiTarget & { connection: string; reason?: string; json?: boolean }) => {
      const r = await callApi<{ killed_sessions: number }>(opts, "POST", `/api/freezes/${encodeURIComponent(opts.connection)}`, opts.reason ? { reason: opts.reason } : {});
      printResult(!!opts.json, r, `froze ${opts.connection}; ${r.killed_sessions} live session(s) ended`);
    }));
  api(program.command("unfreeze").description("allow sessions to a frozen connection again").requiredOption("--connection <name>", "the connection"))
    .action(action(async (opts: ApiTarget & { connection: string; json?: boolean }) => {
      const r = await callApi<{ unfrozen: string }>(opts, "DELETE", `/api/freezes/${encodeURIComponent(opts.connection)}`);
      printResult(!!opts.json, r, `unfroze ${r.unfrozen}`);
    }));
  api(program.command("freezes").description("frozen connections"))
    .action(action(async (opts: ApiTarget & { json?: boolean }) => {
      const { freezes } = await callApi<{ freezes: FreezeRow[] }>(opts, "GET", "/api/freezes");
      printResult(!!opts.json, freezes, freezes.length ? freezes.map((f) => `${f.connection}  since ${new Date(f.createdAt).toISOString()} by ${f.createdBy}  (${f.reason})`).join("\n") : "no frozen connections");
    }));
}
