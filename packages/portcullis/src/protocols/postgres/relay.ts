/**
 * The one place every message between agent and target passes once a session is up.
 * Each direction is a Pump: bytes → whole frames → stages → destination socket. A stage declares
 * the message types it wants; runs of frames no stage wants are written on as the contiguous
 * bytes they arrived in, never decoded. A stage may answer synchronously or with a promise (an
 * approval wait): the pump then stops reading its source until the answer arrives, so the
 * protocol's order is kept. Backpressure is honoured both ways.
 */
import type { Socket } from "node:net";
import type { BufferBudget, BufferLease } from "../../core/connection-limits.js";
import { PortcullisError } from "../../errors.js";
import { type Frame, Framer } from "./framer.js";

/** What a stage wants done with a frame: forward these instead (none = drop), and/or answer the sender. */
export interface Verdict {
  forward?: Buffer[];
  reply?: Buffer[];
}

/** undefined: pass the frame on unchanged (to the next stage, then the destination). */
export type StageHook = (frame: Frame) => Verdict | undefined | Promise<Verdict | undefined>;

export interface MessageStage {
  /** A frame from the agent, before it reaches the target. */
  fromClient?: StageHook;
  /** Message types fromClient wants; absent: every type. */
  clientTypes?: readonly number[];
  /** A frame from the target, before it reaches the agent. */
  fromServer?: StageHook;
  /** Message types fromServer wants; absent: every type. */
  serverTypes?: readonly number[];
}

export interface StageBinding {
  hook: StageHook;
  types?: readonly number[];
}

interface Hook {
  hook: StageHook;
  /** Position of the stage in the pump's order. */
  stage: number;
}

export interface PumpOptions {
  source: Socket;
  destination: Socket;
  maxMessageSize: number;
  stages: StageBinding[];
  /** Where a stage's `reply` goes: back toward the source. */
  replyTo: (bufs: Buffer[]) => void;
  onError: (err: Error) => void;
  /** Counts bytes forwarded, for metrics. */
  onBytes?: (n: number) => void;
  /** Charged with what the pump holds (a partial message, frames queued during a wait) until its source closes. */
  budget?: BufferBudget;
}

export class Pump {
  private readonly framer: Framer;
  /** Hooks per message type, in stage order; undefined where no stage is interested. */
  private readonly byType: (Hook[] | undefined)[] = new Array(256);
  private queue: Frame[] = [];
  private queuedBytes = 0;
  private readonly lease?: BufferLease;
  private waiting = false;
  private draining = false;
  /** After a framing error the stream position is lost: nothing more is parsed or forwarded. */
  private failed = false;

  constructor(private readonly o: PumpOptions) {
    this.framer = new Framer(o.maxMessageSize);
    if (o.budget) {
      const lease = o.budget.lease();
      this.lease = lease;
      o.source.once("close", () => lease.release());
    }
    for (let t = 0; t < 256; t++) {
      const hooks = o.stages.flatMap((s, stage) => (!s.types || s.types.includes(t) ? [{ hook: s.hook, stage }] : []));
      if (hooks.length > 0) this.byType[t] = hooks;
    }
  }

  /** Feeds bytes received from the source. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    let frames: Frame[];
    try {
      frames = this.framer.push(chunk);
    } catch (err) {
      this.failed = true;
      this.o.onError(err as Error);
      return;
    }
    if (this.waiting) {
      this.queue.push(...frames);
      this.queuedBytes += bytesOf(frames);
    }
    if (!this.charge() || frames.length === 0 || this.waiting) return;
    // One chunk's frames leave in one writev, however many pieces the stages cut them into.
    const dst = this.o.destination;
    dst.cork();
    try {
      this.run(frames, 0);
    } finally {
      dst.uncork();
    }
  }

  /** Forwards runs of uninteresting frames whole; hands the others to their stages. */
  private run(frames: Frame[], start: number): void {
    let runStart = start;
    for (let i = start; i < frames.length; i++) {
      const frame = frames[i]!;
      const hooks = this.byType[frame.type];
      if (!hooks) {
        // Frames queued during a wait may come from different chunks: a run must be one buffer.
        if (i > runStart && !adjacent(frames[i - 1]!.raw, frame.raw)) {
          this.write(span(frames, runStart, i));
          runStart = i;
        }
        continue;
      }
      if (i > runStart) this.write(span(frames, runStart, i));
      runStart = i + 1;
      let result: void | Promise<void>;
      try {
        result = this.apply(hooks, frame, 0);
      } catch (err) {
        // A stage that cannot decide must not take the gateway down, nor let the frame through.
        this.failed = true;
        this.o.onError(err as Error);
        return;
      }
      if (result instanceof Promise) {
        this.suspend(result, frames, i + 1);
        return;
      }
    }
    if (runStart < frames.length) this.write(span(frames, runStart, frames.length));
  }

  private suspend(p: Promise<void>, frames: Frame[], next: number): void {
    this.waiting = true;
    this.queue = frames.slice(next);
    this.queuedBytes = bytesOf(this.queue);
    this.o.source.pause();
    this.charge();
    p.then(
      () => {
        // Over the budget while waiting: the session is ending, nothing queued goes on.
        if (this.failed) return;
        this.waiting = false;
        const rest = this.queue;
        this.queue = [];
        this.queuedBytes = 0;
        this.charge();
        if (!this.draining) this.o.source.resume();
        // The frames left over from a suspended chunk leave in one writev too.
        const dst = this.o.destination;
        dst.cork();
        try {
          this.run(rest, 0);
        } finally {
          dst.uncork();
        }
      },
      (err: Error) => { if (!this.failed) this.o.onError(err); },
    );
  }

  /**
   * Runs a frame through its hooks from stage `from` on. Frames a stage forwards in its place go on
   * through the later stages (onion order): a replacement is seen by every stage after the one that made it.
   */
  private apply(hooks: Hook[], frame: Frame, from: number): void | Promise<void> {
    for (const h of hooks) {
      if (h.stage < from) continue;
      const v = h.hook(frame);
      if (v instanceof Promise) {
        return v.then((verdict) => (verdict ? this.deliver(verdict, h.stage + 1) : this.apply(hooks, frame, h.stage + 1)));
      }
      if (v) return this.deliver(v, h.stage + 1);
    }
    this.write(frame.raw);
  }

  private deliver(v: Verdict, nextStage: number): void | Promise<void> {
    if (v.reply && v.reply.length > 0) this.o.replyTo(v.reply);
    const forward = v.forward ?? [];
    let chain: Promise<void> | undefined;
    for (const buf of forward) {
      const next = (): void | Promise<void> => {
        const hooks = this.byType[buf[0]!];
        return hooks ? this.apply(hooks, { type: buf[0]!, raw: buf }, nextStage) : this.write(buf);
      };
      const r = chain ? chain.then(next) : next();
      if (r instanceof Promise) chain = r;
    }
    return chain;
  }

  /** Tells the budget what this pump holds now; past the budget, the session ends (fail closed, nothing more forwarded). */
  private charge(): boolean {
    if (!this.lease || this.lease.hold(this.framer.buffered + this.queuedBytes)) return true;
    this.failed = true;
    this.o.onError(new PortcullisError("E_OUT_OF_MEMORY", "out of memory: the gateway's buffer budget is exhausted"));
    return false;
  }

  private write(buf: Buffer): void {
    this.o.onBytes?.(buf.length);
    if (!this.o.destination.write(buf) && !this.draining) {
      this.draining = true;
      this.o.source.pause();
      this.o.destination.once("drain", () => {
        this.draining = false;
        if (!this.waiting) this.o.source.resume();
      });
    }
  }
}

function bytesOf(frames: Frame[]): number {
  let n = 0;
  for (const f of frames) n += f.raw.length;
  return n;
}

function adjacent(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/** The bytes of frames [from, to) — consecutive slices of one buffer — as a single view. */
function span(frames: Frame[], from: number, to: number): Buffer {
  const first = frames[from]!.raw;
  if (to - from === 1) return first;
  const last = frames[to - 1]!.raw;
  return Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset);
}
