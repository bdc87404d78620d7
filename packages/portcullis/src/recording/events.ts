/**
 * A session recording is an ordered stream of these events, stored as JSON lines in chunks.
 * `t` is milliseconds since the session started; replay keeps those gaps (or scales them).
 * Every value in it has already been masked: the recorder sits behind masking on the way out.
 */
import type { RunContext } from "../identity/principal.js";
import type { SessionStats } from "../store/store.js";

export interface StartEvent {
  e: "start";
  at: string;
  protocol: string;
  connection: string;
  sub: string;
  groups: string[];
  iss: string;
  client: string;
  run: RunContext;
  run_hints: RunContext;
}

export interface OperationEvent {
  e: "op";
  /** Per-session operation number; results name it. */
  op: number;
  type: "sql" | "http" | "ssh";
  /** The statement with its literal values replaced by $n. */
  statement?: string;
  kinds?: string[];
  tables?: string[];
  functions?: string[];
  action: "allow" | "deny" | "approve";
  rule?: string;
  /** Why an allowed operation was still refused (a spent budget, a revoked identity). */
  refused?: string;
}

export interface ResultEvent {
  e: "result";
  op?: number;
  columns?: string[];
  /** Rows kept under the caps; see `truncated`. */
  rows: (string | null)[][];
  row_count: number;
  /** Wire bytes of all rows. */
  bytes: number;
  /** Rows past the cap were counted and hashed, not kept. */
  truncated?: boolean;
  /** SHA-256 over every row's wire bytes (masked), kept or not. */
  sha256?: string;
  /** Command tag, e.g. "SELECT 3". */
  tag?: string;
  error?: { code: string; message: string };
  /** Time from the operation to its completion. */
  ms?: number;
}

export interface MessageEvent {
  e: "notice" | "notification";
  text: string;
}

export interface EndEvent {
  e: "end";
  at: string;
  reason: string;
  stats: SessionStats;
}

export type RecordingEvent = StartEvent | OperationEvent | ResultEvent | MessageEvent | EndEvent;
export type TimedEvent = RecordingEvent & { t: number };
