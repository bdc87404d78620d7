/**
 * `portcullis audit verify`: walks the whole chain and every checkpoint, and names the first record
 * that is wrong. What it can prove: any altered, removed or reordered record (the links break), and
 * a truncated tail up to the newest checkpoint it was shown. A tail cut after the last checkpoint
 * that reached an anchor is indistinguishable from a log that simply ended there; anchors outside
 * the store (a file elsewhere, a webhook) are what make truncation detectable.
 */
import type { KeyObject } from "node:crypto";
import type { AuditRow, CheckpointRow } from "../store/store.js";
import { GENESIS, hashRecord } from "./chain.js";
import { checkpointSignatureValid } from "./signing.js";

export interface CheckpointSource {
  /** Where the checkpoints were read from: "store", or an anchor file's name. */
  origin: string;
  checkpoints: readonly CheckpointRow[];
}

export interface VerifyInput {
  /** Audit records with seq > afterSeq in ascending order, at most `limit` (the store's readAudit). */
  read(afterSeq: number, limit: number): AuditRow[];
  sources: readonly CheckpointSource[];
  /** Key the checkpoint signatures must verify under; absent: no checkpoint can be trusted. */
  publicKey?: KeyObject;
}

export type VerifyResult =
  | { ok: true; records: number; lastSeq: number; lastHash: string; checkpoints: number; newestCheckpoint?: number }
  | { ok: false; seq: number; problem: string; records: number };

const PAGE = 5000;

export function verifyAudit(input: VerifyInput): VerifyResult {
  // Checkpoint hashes by seq, checked as the walk passes each one.
  const vouched = new Map<number, { hash: string; origin: string }>();
  let checkpoints = 0;
  let newest: { seq: number; origin: string } | undefined;
  for (const { origin, checkpoints: list } of input.sources) {
    for (const cp of list) {
      if (!input.publicKey) return { ok: false, seq: cp.seq, problem: `checkpoint at record ${cp.seq} (${origin}) cannot be checked: no public key`, records: 0 };
      if (!checkpointSignatureValid(cp, input.publicKey)) {
        return { ok: false, seq: cp.seq, problem: `checkpoint at record ${cp.seq} (${origin}) has an invalid signature`, records: 0 };
      }
      const seen = vouched.get(cp.seq);
      if (seen && seen.hash !== cp.hash) {
        return { ok: false, seq: cp.seq, problem: `checkpoints at record ${cp.seq} disagree (${seen.origin} and ${origin})`, records: 0 };
      }
      vouched.set(cp.seq, { hash: cp.hash, origin });
      checkpoints++;
      if (!newest || cp.seq > newest.seq) newest = { seq: cp.seq, origin };
    }
  }

  let expected = 1;
  let prev = GENESIS;
  let records = 0;
  for (;;) {
    const page = input.read(expected - 1, PAGE);
    if (page.length === 0) break;
    for (const row of page) {
      if (row.seq !== expected) {
        return { ok: false, seq: expected, problem: `record ${expected} is missing (the log goes from ${expected - 1} to ${row.seq})`, records };
      }
      const { hash, ...rest } = row;
      if (hashRecord(rest) !== hash) {
        return { ok: false, seq: row.seq, problem: `record ${row.seq} does not match its hash (altered or moved)`, records };
      }
      if (row.prev !== prev) {
        return { ok: false, seq: row.seq, problem: `record ${row.seq} does not link to record ${row.seq - 1} (a record before it was altered, removed or reordered)`, records };
      }
      const cp = vouched.get(row.seq);
      if (cp && cp.hash !== hash) {
        return { ok: false, seq: row.seq, problem: `record ${row.seq} differs from the checkpoint in ${cp.origin} (the log was rewritten)`, records };
      }
      prev = hash;
      expected++;
      records++;
    }
  }
  const lastSeq = expected - 1;
  if (newest && newest.seq > lastSeq) {
    return { ok: false, seq: lastSeq + 1, problem: `the log ends at record ${lastSeq} but a checkpoint in ${newest.origin} vouches for record ${newest.seq} (tail truncated)`, records };
  }
  return { ok: true, records, lastSeq, lastHash: prev, checkpoints, ...(newest ? { newestCheckpoint: newest.seq } : {}) };
}
