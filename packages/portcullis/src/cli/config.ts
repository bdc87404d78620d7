/** `portcullis config validate`. */
import type { Command } from "commander";
import { ConfigError, loadConfig } from "../config/load.js";
import { DEFAULT_CONFIG, action, printResult } from "./output.js";

export function registerConfig(program: Command): void {
  const config = program.command("config").description("work with portcullis.yaml");
  config
    .command("validate")
    .description("check a configuration file and list every problem in it")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .option("--json", "print JSON")
    .action(action((opts: { config: string; json?: boolean }) => {
      try {
        const cfg = loadConfig(opts.config);
        printResult(!!opts.json, { valid: true, file: cfg.source, connections: cfg.connections.map((c) => c.name) },
          `${opts.config}: valid (${cfg.connections.length} connection${cfg.connections.length === 1 ? "" : "s"})`);
      } catch (err) {
        if (err instanceof ConfigError && opts.json) {
          printResult(true, { valid: false, file: opts.config, problems: err.problems }, "");
          process.exitCode = 2;
          return;
        }
        throw err;
      }
    }));
}
