/**
 * `portcullis sessions list|show`: past and live sessions from the store. Reads the store directly,
 * so a responder can list a copied store offline.
 */
import type { Command } from "commander";
import type { SessionFilter, SessionRecord } from "../store/store.js";
import { CliError, DEFAULT_CONFIG, action, printResult } from "./output.js";
import { withStore } from "./store.js";
import { type ApiTarget, callApi } from "./api-client.js";
import { parseTime } from "./time.js";

/** --outcome → the end reasons it stands for. */
const OUTCOMES: Record<string, string[]> = {
  ok: ["client_closed", "upstream_closed"],
  killed: ["killed", "revoked", "frozen"],
  expired: ["token_expired"],
  error: ["error"],
  abnormal: ["abnormal"],
};

interface ListOptions {
  config: string;
  subject?: string;
  connection?: string;
  runId?: string;
  since?: string;
  until?: string;
  outcome?: string;
  live?: boolean;
  limit: string;
  json?: boolean;
}

export function registerSessions(program: Command): void {
  const sessions = program.command("sessions").description("sessions, live and past");

  sessions
    .command("list")
    .description("sessions, newest first")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .option("--subject <sub>", "only this identity")
    .option("--connection <name>", "only this connection")
    .option("--run-id <id>", "only this LangGraph run (signed claim or client hint)")
    .option("--since <time>", "started at or after (ISO time or e.g. 24h)")
    .option("--until <time>", "started before (ISO time or e.g. 1h)")
    .option("--outcome <o>", `how it ended: ${[...Object.keys(OUTCOMES), "live"].join(", ")}`)
    .option("--live", "only sessions still open")
    .option("--limit <n>", "at most this many", "50")
    .option("--json", "print JSON")
    .action(action(async (opts: ListOptions) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit: expected a positive integer, got "${opts.limit}"`);
      const filter: SessionFilter = { limit };
      if (opts.subject) filter.sub = opts.subject;
      if (opts.connection) filter.connection = opts.connection;
      if (opts.runId) filter.runId = opts.runId;
      if (opts.since) filter.since = parseTime(opts.since, "--since");
      if (opts.until) filter.until = parseTime(opts.until, "--until");
      if (opts.live || opts.outcome === "live") filter.live = true;
      const reasons = opts.outcome && opts.outcome !== "live" ? OUTCOMES[opts.outcome] : undefined;
      if (opts.outcome && opts.outcome !== "live" && !reasons) {
        throw new CliError(`--outcome: expected one of ${[...Object.keys(OUTCOMES), "live"].join(", ")}, got "${opts.outcome}"`);
      }
      await withStore(opts.config, (store) => {
        const found = reasons
          ? reasons.flatMap((endReason) => store.listSessions({ ...filter, endReason }))
            .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime()).slice(0, limit)
          : store.listSessions(filter);
        printResult(!!opts.json, found.map(toJson), found.length === 0 ? "no sessions" : table(found));
      });
    }));

  sessions
    .command("show <id>")
    .description("one session: who, where, run context, how it ended, totals")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .option("--json", "print JSON")
    .action(action(async (id: string, opts: { config: string; json?: boolean }) => {
      await withStore(opts.config, (store) => {
        const s = store.getSession(id);
        if (!s) throw new CliError(`no session ${id}`);
        const j = toJson(s);
        const lines = Object.entries(j).map(([k, v]) => `${k.padEnd(12)} ${typeof v === "object" ? JSON.stringify(v) : String(v ?? "")}`);
        printResult(!!opts.json, j, lines.join("\n"));
      });
    }));
  registerSessionKill(sessions);
}

export function registerSessionKill(sessions: Command): void {
  sessions
    .command("kill <id>")
    .description("end one live session now (through the running gateway; admin token in PORTCULLIS_TOKEN)")
    .option("-c, --config <file>", "configuration file (for gateway.http)", DEFAULT_CONFIG)
    .option("--url <url>", "the gateway's HTTP address, instead of reading the config")
    .option("--reason <r>", "why (audit log)")
    .option("--json", "print JSON")
    .action(action(async (id: string, opts: ApiTarget & { reason?: string; json?: boolean }) => {
      const r = await callApi<{ killed: string }>(opts, "POST", `/api/sessions/${encodeURIComponent(id)}/kill`, opts.reason ? { reason: opts.reason } : {});
      printResult(!!opts.json, r, `killed ${r.killed}`);
    }));
}

function toJson(s: SessionRecord) {
  return {
    id: s.id,
    protocol: s.protocol,
    connection: s.connection,
    sub: s.sub,
    groups: s.groups,
    iss: s.iss,
    jti: s.jti ?? null,
    client: s.clientAddress,
    run: s.run,
    run_hints: s.runHints,
    started_at: s.startedAt.toISOString(),
    ended_at: s.endedAt?.toISOString() ?? null,
    end_reason: s.endReason ?? null,
    stats: s.stats ?? null,
  };
}

function table(rows: SessionRecord[]): string {
  const head = ["ID", "STARTED", "SUBJECT", "CONNECTION", "RUN", "OPS", "ROWS", "ENDED"];
  const body = rows.map((s) => [
    s.id,
    s.startedAt.toISOString(),
    s.sub,
    s.connection,
    s.run.run_id ?? s.runHints.run_id ?? "-",
    String(s.stats?.operations ?? "-"),
    String(s.stats?.rows ?? "-"),
    s.endReason ?? "live",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [head, ...body].map((r) => r.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}
