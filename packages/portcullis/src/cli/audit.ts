/** `portcullis audit verify|export|public-key`: read the store directly, so they work offline on a copied store. */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { readAnchorFile } from "../audit/anchors.js";
import { exportRecord } from "../audit/chain.js";
import { CheckpointSigner, publicKeyFromDataDir } from "../audit/signing.js";
import { type CheckpointSource, verifyAudit } from "../audit/verify.js";
import { loadConfig } from "../config/load.js";
import { CliError, DEFAULT_CONFIG, action, printResult } from "./output.js";
import { withStore } from "./store.js";
import { parseTime } from "./time.js";

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident audit log");

  audit
    .command("verify")
    .description("check the hash chain and every signed checkpoint; exits 1 naming the first bad record")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .option("--anchor <file>", "checkpoint anchor file (default: audit.anchors.file of the config)")
    .option("--public-key <file>", "PEM public key the checkpoints must verify under (default: from data_dir's signing key)")
    .option("--json", "print JSON")
    .action(action(async (opts: { config: string; anchor?: string; publicKey?: string; json?: boolean }) => {
      await withStore(opts.config, (store, config) => {
        const publicKey = opts.publicKey ? readPublicKey(opts.publicKey) : publicKeyFromDataDir(config.dataDir);
        const sources: CheckpointSource[] = [{ origin: "the store", checkpoints: store.listCheckpoints() }];
        const anchor = opts.anchor ?? config.audit.anchors.file;
        if (anchor) {
          let checkpoints;
          try {
            checkpoints = readAnchorFile(anchor);
          } catch (err) {
            // An anchor named but missing is a finding, not a detail: someone may have removed it.
            throw new CliError(`cannot read anchor file ${anchor}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
          sources.push({ origin: `anchor ${anchor}`, checkpoints });
        }
        const r = verifyAudit({ read: (after, limit) => store.readAudit(after, limit), sources, ...(publicKey ? { publicKey } : {}) });
        if (!r.ok) {
          if (opts.json) printResult(true, r, "");
          throw new CliError(`audit log NOT intact: ${r.problem}`);
        }
        const cp = r.newestCheckpoint !== undefined ? `; ${r.checkpoints} checkpoints, newest at record ${r.newestCheckpoint}` : "; no checkpoint yet";
        printResult(!!opts.json, r, `audit log intact: ${r.records} records${cp}; head ${r.lastHash.slice(0, 16)}…`);
      });
    }));

  audit
    .command("export")
    .description("print audit records as JSON lines, oldest first")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .option("--since <time>", "ISO time or a duration back from now (e.g. 24h)")
    .option("--after-seq <n>", "only records after this sequence number", "0")
    .action(action(async (opts: { config: string; since?: string; afterSeq: string }) => {
      await withStore(opts.config, async (store) => {
        let after = Number(opts.afterSeq);
        if (!Number.isInteger(after) || after < 0) throw new CliError(`--after-seq: expected a non-negative integer, got "${opts.afterSeq}"`);
        if (opts.since) {
          const first = store.firstAuditSeqAt(parseTime(opts.since, "--since"));
          if (first === undefined) return;
          after = Math.max(after, first - 1);
        }
        for (;;) {
          const page = store.readAudit(after, 1000);
          if (page.length === 0) break;
          const text = page.map((r) => JSON.stringify(exportRecord(r))).join("\n") + "\n";
          // Respect backpressure: an export of millions of records piped to a slow reader.
          if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once("drain", r));
          after = page.at(-1)!.seq;
        }
      });
    }));

  audit
    .command("public-key")
    .description("print the checkpoint signing public key (PEM); keep a copy where the gateway's host cannot change it")
    .option("-c, --config <file>", "configuration file", DEFAULT_CONFIG)
    .action(action((opts: { config: string }) => {
      const config = loadConfig(opts.config);
      process.stdout.write(CheckpointSigner.open(config.dataDir).publicKeyPem());
    }));
}

function readPublicKey(file: string): KeyObject {
  try {
    return createPublicKey(readFileSync(file));
  } catch (err) {
    throw new CliError(`--public-key: cannot read a public key from ${file} (${(err as NodeJS.ErrnoException).code ?? "not a PEM key"})`);
  }
}
