/**
 * `portcullis demo`: runs examples/customer-research/demo.ts, the incident staged end to end. The
 * demo is a LangGraph graph and lives with the example in the repository, so it runs from a clone
 * after `npm ci` (tsx, a dev dependency, runs its TypeScript as is).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { CliError, action } from "./output.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("the incident, end to end: a leaked agent token caught and contained on this machine (about 10 seconds)")
    .action(action(async () => {
      const script = fileURLToPath(new URL("../../../../examples/customer-research/demo.ts", import.meta.url));
      if (!existsSync(script)) throw new CliError("the demo runs from a clone of the repository (examples/customer-research is not here)");
      let tsx: string;
      try {
        tsx = import.meta.resolve("tsx");
      } catch {
        throw new CliError("the demo needs the repository's dev dependencies: run npm ci first");
      }
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, ["--import", tsx, script], { stdio: "inherit" });
        child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
      });
      if (code !== 0) process.exitCode = code;
    }));
}
