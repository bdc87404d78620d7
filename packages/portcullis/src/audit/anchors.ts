/**
 * Anchors: copies of each signed checkpoint kept outside the store, so that whoever can rewrite
 * the store cannot also make its newest records disappear unnoticed. A file anchor should live on
 * another disk or host (append-only storage, a mounted WORM bucket); a webhook anchor hands the
 * checkpoint to another system entirely.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname } from "node:path";
import type { CheckpointAnchor } from "../core/journal.js";
import type { CheckpointRow } from "../store/store.js";
import { backoff, postSigned } from "./webhook.js";

interface AnchorLine {
  seq: number;
  hash: string;
  at: number;
  key_id: string;
  signature: string;
}

function toLine(cp: CheckpointRow): AnchorLine {
  return { seq: cp.seq, hash: cp.hash, at: cp.at, key_id: cp.keyId, signature: cp.signature };
}

/** Appends one JSON line per checkpoint and fsyncs it; writes are serialised. */
export class FileAnchor implements CheckpointAnchor {
  readonly name: string;
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly path: string) {
    this.name = `file:${path}`;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }

  write(cp: CheckpointRow): Promise<void> {
    const next = this.tail.then(async () => {
      const fh = await open(this.path, "a", 0o600);
      try {
        await fh.appendFile(`${JSON.stringify(toLine(cp))}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
    this.tail = next.catch(() => {});
    return next;
  }
}

/** POSTs each checkpoint (HMAC signed), retrying with backoff until it is accepted or `attempts` run out. */
export class WebhookAnchor implements CheckpointAnchor {
  readonly name: string;

  constructor(private readonly target: { url: string; secret?: string }, private readonly attempts = 8) {
    this.name = `webhook:${new URL(target.url).origin}`;
  }

  async write(cp: CheckpointRow): Promise<void> {
    const body = JSON.stringify({ checkpoint: toLine(cp) });
    for (let attempt = 0; ; attempt++) {
      try {
        await postSigned({ url: this.target.url, body, ...(this.target.secret ? { secret: this.target.secret } : {}) });
        return;
      } catch (err) {
        if (attempt + 1 >= this.attempts) throw err;
        await new Promise((r) => setTimeout(r, backoff(attempt)).unref());
      }
    }
  }
}

/** Checkpoints from an anchor file; a line that is not one is an error naming its line number. */
export function readAnchorFile(path: string): CheckpointRow[] {
  const text = readFileSync(path, "utf8");
  const out: CheckpointRow[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let v: Partial<AnchorLine>;
    try {
      v = JSON.parse(line) as Partial<AnchorLine>;
    } catch {
      throw new Error(`${path}:${i + 1}: not a checkpoint (invalid JSON)`);
    }
    if (typeof v.seq !== "number" || typeof v.hash !== "string" || typeof v.at !== "number" || typeof v.key_id !== "string" || typeof v.signature !== "string") {
      throw new Error(`${path}:${i + 1}: not a checkpoint`);
    }
    out.push({ seq: v.seq, hash: v.hash, at: v.at, keyId: v.key_id, signature: v.signature });
  });
  return out;
}
