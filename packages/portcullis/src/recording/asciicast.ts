/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * `[seconds, "o", text]` event per line. Any asciinema player replays it; SSH sessions will
 * record terminal output directly, SQL sessions are rendered as a transcript.
 */
import type { Frame } from "./replay.js";

export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp: number;
  title: string;
  env: Record<string, string>;
}

export function toAsciicast(frames: readonly Frame[], meta: { title: string; startedAt: Date; width?: number; height?: number }): string {
  const header: AsciicastHeader = {
    version: 2,
    width: meta.width ?? 120,
    height: meta.height ?? 40,
    timestamp: Math.floor(meta.startedAt.getTime() / 1000),
    title: meta.title,
    env: { TERM: "xterm-256color", SHELL: "/bin/sh" },
  };
  const lines = [JSON.stringify(header)];
  let last = 0;
  for (const f of frames) {
    // Times must not go backwards, even if the clock did.
    last = Math.max(last, f.t);
    lines.push(JSON.stringify([last / 1000, "o", f.text.replace(/\r?\n/g, "\r\n")]));
  }
  return `${lines.join("\n")}\n`;
}
