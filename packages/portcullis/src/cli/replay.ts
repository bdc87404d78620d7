/** `portcullis replay ID`: a recorded session, as it happened. Reads the store directly (works offline). */
import type { Command } from "commander";
import { toAsciicast } from "../recording/asciicast.js";
import { loadRecording, renderFrames } from "../recording/replay.js";
import { CliError, DEFAULT_CONFIG, action } from "./output.js";
import { withStore } from "./store.js";

/** Longest pause replay sits through, whatever the speed: idle minutes are not worth watching. */
const MAX_PAUSE_MS = 3000;

export function registerReplay(program: Command): void {
  program
    .command("replay <id>")
    .description("replay a recorded session: operations, decisions and the (masked) results, in order")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .option("--speed <n>", "playback speed; 0 prints everything at once", "1")
    .option("--instant", "same as --speed 0")
    .option("--format <f>", "text | jsonl | asciicast", "text")
    .action(action(async (id: string, opts: { config: string; speed: string; instant?: boolean; format: string }) => {
      if (!["text", "jsonl", "asciicast"].includes(opts.format)) throw new CliError(`--format: expected text, jsonl or asciicast, got "${opts.format}"`);
      const speed = opts.instant ? 0 : Number(opts.speed);
      if (!Number.isFinite(speed) || speed < 0) throw new CliError(`--speed: expected a number ≥ 0, got "${opts.speed}"`);
      const { record, events } = await withStore(opts.config, (store) => {
        const record = store.getSession(id);
        if (!record) throw new CliError(`no session ${id}`);
        return { record, events: loadRecording(store, id) };
      });
      if (opts.format === "jsonl") {
        process.stdout.write(events.map((e) => JSON.stringify(e)).join("\n") + (events.length ? "\n" : ""));
        return;
      }
      const frames = renderFrames(record, events);
      if (opts.format === "asciicast") {
        process.stdout.write(toAsciicast(frames, { title: `portcullis session ${record.id} (${record.sub} → ${record.connection})`, startedAt: record.startedAt }));
        return;
      }
      let last = 0;
      for (const f of frames) {
        if (speed > 0) {
          const wait = Math.min(MAX_PAUSE_MS, (f.t - last) / speed);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        last = f.t;
        process.stdout.write(f.text);
      }
    }));
}
