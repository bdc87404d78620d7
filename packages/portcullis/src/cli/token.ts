/** `portcullis token issue`: tokens from the built-in dev issuer, for local use. */
import type { Command } from "commander";
import { parseDuration } from "../config/units.js";
import { loadConfig } from "../config/load.js";
import { DevIssuer } from "../identity/dev-issuer.js";
import { CliError, DEFAULT_CONFIG, action, printResult } from "./output.js";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerToken(program: Command): void {
  const token = program.command("token").description("dev issuer tokens");
  token
    .command("issue")
    .description("issue a token from the built-in dev issuer (identity.dev_issuer: true; key in data_dir)")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .requiredOption("--sub <subject>", "subject (who the token is for)")
    .option("--groups <list>", "comma-separated groups", "")
    .option("--ttl <duration>", "lifetime, e.g. 10m", "10m")
    .option("--claim <k=v>", "extra claim (repeatable), e.g. run_id=abc", collect, [] as string[])
    .option("--json", "print JSON")
    .action(action(async (opts: { config: string; sub: string; groups: string; ttl: string; claim: string[]; json?: boolean }) => {
      const cfg = loadConfig(opts.config);
      if (!cfg.identity.dev_issuer) throw new CliError(`${opts.config}: identity.dev_issuer is not enabled`);
      const ttlMs = parseDuration(opts.ttl);
      if (!ttlMs) throw new CliError(`--ttl: expected a duration such as "10m", got "${opts.ttl}"`);
      const claims: Record<string, string> = {};
      for (const kv of opts.claim) {
        const eq = kv.indexOf("=");
        if (eq <= 0) throw new CliError(`--claim: expected k=v, got "${kv}"`);
        claims[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      const groups = opts.groups.split(",").map((g) => g.trim()).filter(Boolean);
      const issuer = await DevIssuer.open(cfg.dataDir);
      const ttlSeconds = Math.max(1, Math.round(ttlMs / 1000));
      const jwt = await issuer.issue({ sub: opts.sub, groups, ttlSeconds, claims });
      const exp = new Date(Date.now() + ttlSeconds * 1000).toISOString();
      printResult(!!opts.json, { token: jwt, sub: opts.sub, groups, expires_at: exp }, jwt);
    }));
}
