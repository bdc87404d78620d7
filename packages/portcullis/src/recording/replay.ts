/**
 * Turns a stored recording back into what happened: the ordered events, and terminal frames
 * (what a responder reads, in the order and at the offsets it happened) for `portcullis replay`
 * and asciicast export.
 */
import type { SessionRecord, Store } from "../store/store.js";
import type { ResultEvent, TimedEvent } from "./events.js";

/** Events of a session in order. A recording cut off by a crash ends where the crash cut it. */
export function loadRecording(store: Pick<Store, "readRecording">, session: string): TimedEvent[] {
  const events: TimedEvent[] = [];
  for (const chunk of store.readRecording(session)) {
    for (const line of chunk.events.split("\n")) if (line !== "") events.push(JSON.parse(line) as TimedEvent);
  }
  return events;
}

/** A piece of terminal output at `t` ms from the session's start. */
export interface Frame {
  t: number;
  text: string;
}

const MAX_CELL = 40;

export function renderFrames(record: SessionRecord, events: readonly TimedEvent[]): Frame[] {
  const frames: Frame[] = [];
  const who = `${record.sub}${record.groups.length ? ` (${record.groups.join(", ")})` : ""}`;
  const run = record.run.run_id ?? record.runHints.run_id;
  frames.push({
    t: 0,
    text: `# session ${record.id}\n# ${who} → ${record.connection} (${record.protocol}) from ${record.clientAddress}${run ? ` · run ${run}` : ""}\n# started ${record.startedAt.toISOString()}\n`,
  });
  let ended = false;
  for (const ev of events) {
    switch (ev.e) {
      case "start":
        break;
      case "op": {
        const what = ev.statement ?? `(${(ev.kinds ?? []).join(", ") || "operation"})`;
        const verdict = ev.action === "allow" ? "" : ` [${ev.action.toUpperCase()}${ev.rule ? ` by rule ${ev.rule}` : ""}]`;
        frames.push({ t: ev.t, text: `\n${record.sub}@${record.connection} #${ev.op}${verdict}> ${what}\n` });
        break;
      }
      case "result":
        frames.push({ t: ev.t, text: renderResult(ev) });
        break;
      case "notice":
        frames.push({ t: ev.t, text: `NOTICE: ${ev.text}\n` });
        break;
      case "notification":
        frames.push({ t: ev.t, text: `NOTIFY ${ev.text}\n` });
        break;
      case "end":
        ended = true;
        frames.push({ t: ev.t, text: endLine(ev.reason, ev.at, ev.stats) });
        break;
    }
  }
  if (!ended) {
    // The recording stops short (a crash, or the session is live): say how the store saw it end.
    const t = record.endedAt ? record.endedAt.getTime() - record.startedAt.getTime() : (events.at(-1)?.t ?? 0);
    frames.push({
      t: Math.max(t, frames.at(-1)?.t ?? 0),
      text: record.endedAt ? endLine(record.endReason ?? "unknown", record.endedAt.toISOString(), record.stats) : "\n# (session still live, or the recording was cut short)\n",
    });
  }
  return frames;
}

function endLine(reason: string, at: string, stats?: { operations: number; denied: number; rows: number; bytes: number }): string {
  const s = stats ? ` · ${stats.operations} operations, ${stats.denied} denied, ${stats.rows} rows, ${stats.bytes} bytes` : "";
  return `\n# ended ${at} · ${reason}${s}\n`;
}

function renderResult(r: ResultEvent): string {
  const error = r.error ? `ERROR${r.error.code ? ` ${r.error.code}` : ""}: ${r.error.message}\n` : "";
  if (r.error && r.row_count === 0) return error;
  const lines: string[] = [];
  if (r.columns && r.columns.length > 0) lines.push(...table(r.columns, r.rows));
  else for (const row of r.rows) lines.push(row.map((v) => v ?? "NULL").join("\t").replace(/\n$/, ""));
  const facts = [`${r.row_count} row${r.row_count === 1 ? "" : "s"}`, `${r.bytes} bytes`];
  if (r.ms !== undefined) facts.push(`${r.ms} ms`);
  if (r.truncated) facts.push(`${r.rows.length} kept, the rest counted and hashed (sha256 ${r.sha256?.slice(0, 16)}…)`);
  lines.push(`(${r.tag ? `${r.tag}; ` : ""}${facts.join(", ")})`);
  return `${lines.join("\n")}\n${error}`;
}

function cell(v: string | null): string {
  const s = (v ?? "NULL").replace(/[\r\n\t]/g, " ");
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
}

function table(columns: string[], rows: (string | null)[][]): string[] {
  const cells = rows.map((r) => r.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join(" | ").trimEnd();
  return [line(columns), widths.map((w) => "-".repeat(w)).join("-+-"), ...cells.map(line)];
}
