/** `portcullis serve`: run the gateway until SIGINT/SIGTERM; SIGHUP re-reads the config. */
import type { Command } from "commander";
import { loadConfig } from "../config/load.js";
import { type Gateway, startGateway } from "../server.js";
import { DEFAULT_CONFIG, action } from "./output.js";

export function describeAddresses(gw: Gateway): string[] {
  const lines: string[] = [];
  const { postgres, http } = gw.addresses;
  if (postgres) lines.push(`  postgres  ${postgres.host}:${postgres.port}`);
  if (http) lines.push(`  http      http://${http.host}:${http.port}  (/healthz, /readyz, /metrics with an admin token)`);
  return lines;
}

/** Keeps a started gateway running: signals for reload and shutdown. */
export function runUntilSignalled(gw: Gateway): Promise<void> {
  return new Promise((resolve) => {
    const stop = async (signal: string) => {
      process.stderr.write(`portcullis: ${signal}, shutting down\n`);
      process.off("SIGHUP", reload);
      await gw.stop();
      resolve();
    };
    const reload = () => { void gw.reload(); };
    process.on("SIGHUP", reload);
    process.once("SIGINT", () => void stop("SIGINT"));
    process.once("SIGTERM", () => void stop("SIGTERM"));
  });
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the gateway")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .action(action(async (opts: { config: string }) => {
      const gw = await startGateway(loadConfig(opts.config));
      process.stdout.write(["portcullis is listening:", ...describeAddresses(gw), ""].join("\n"));
      await runUntilSignalled(gw);
    }));
}
