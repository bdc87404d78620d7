/**
 * The one place every message between agent and target passes once a session is up.
 * Each direction is a Pump: bytes → whole frames → stages → destination socket. With no stage
 * interested, frames are written on as the contiguous bytes they arrived in, never decoded.
 * A stage may answer synchronously or with a promise (an approval wait): the pump then stops
 * reading its source until the answer arrives, so the protocol's order is kept.
 * Backpressure is honoured both ways: a slow reader pauses the writer's source.
 */
import type { Socket } from "node:net";
import { type Frame, Framer } from "./framer.js";

/** What a stage wants done with a frame: forward replacements (none = drop) and/or answer the sender. */
export interface Verdict {
  forward?: Buffer[];
  reply?: Buffer[];
}

export type StageHook = (frame: Frame) => Verdict | undefined | Promise<Verdict | undefined>;

export interface MessageStage {
  /** A frame from the agent, before it reaches the target. */
  fromClient?: StageHook;
  /** A frame from the target, before it reaches the agent. */
  fromServer?: StageHook;
}

export interface PumpOptions {
  source: Socket;
  destination: Socket;
  maxMessageSize: number;
  hooks: StageHook[];
  /** Where a stage's `reply` goes: back toward the source. */
  replyTo: (bufs: Buffer[]) => void;
  onError: (err: Error) => void;
  /** Counts bytes forwarded, for metrics. */
  onBytes?: (n: number) => void;
}

export class Pump {
  private readonly framer: Framer;
  private queue: Frame[] = [];
  private waiting = false;
  private draining = false;

  constructor(private readonly o: PumpOptions) {
    this.framer = new Framer(o.maxMessageSize);
  }

  /** Feeds bytes received from the source. */
  push(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.framer.push(chunk);
    } catch (err) {
      this.o.onError(err as Error);
      return;
    }
    if (frames.length === 0) return;
    if (this.o.hooks.length === 0 && !this.waiting) {
      this.write(contiguous(frames));
      return;
    }
    this.queue.push(...frames);
    if (!this.waiting) this.run();
  }

  /** Runs queued frames through the stages; suspends on the first asynchronous verdict. */
  private run(): void {
    while (this.queue.length > 0) {
      const frame = this.queue.shift()!;
      const result = this.applyStages(frame, 0);
      if (result instanceof Promise) {
        this.waiting = true;
        this.o.source.pause();
        result.then(
          () => {
            this.waiting = false;
            if (!this.draining) this.o.source.resume();
            this.run();
          },
          (err: Error) => this.o.onError(err),
        );
        return;
      }
    }
  }

  private applyStages(frame: Frame, from: number): void | Promise<void> {
    for (let i = from; i < this.o.hooks.length; i++) {
      const v = this.o.hooks[i]!(frame);
      if (v instanceof Promise) return v.then((verdict) => this.settle(frame, verdict, i));
      if (v) return this.deliver(v);
    }
    this.write(frame.raw);
  }

  private settle(frame: Frame, verdict: Verdict | undefined, stage: number): void | Promise<void> {
    if (verdict) return this.deliver(verdict);
    return this.applyStages(frame, stage + 1);
  }

  private deliver(v: Verdict): void {
    if (v.reply && v.reply.length > 0) this.o.replyTo(v.reply);
    if (v.forward) for (const b of v.forward) this.write(b);
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

/** The bytes of consecutive frames cut from one buffer, as a single view. */
function contiguous(frames: Frame[]): Buffer {
  const first = frames[0]!.raw;
  if (frames.length === 1) return first;
  const last = frames[frames.length - 1]!.raw;
  return Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset);
}
