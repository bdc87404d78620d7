/** CLI conventions: one clear line on failure and a non-zero exit; JSON with --json. */
import { ConfigError } from "../config/load.js";

export class CliError extends Error {}

export function printResult(json: boolean, data: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(data)}\n` : `${text}\n`);
}

/** Runs a command action, turning any failure into the CLI's error convention. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`portcullis: ${err.message}\n`);
      } else {
        process.stderr.write(`portcullis: ${(err as Error).message}\n`);
      }
      process.exitCode = err instanceof ConfigError ? 2 : 1;
    }
  };
}

export const DEFAULT_CONFIG = "portcullis.yaml";
