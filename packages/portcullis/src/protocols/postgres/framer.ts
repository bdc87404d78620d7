/**
 * Splits a PostgreSQL byte stream into whole messages without decoding them.
 * A typed message is 1 type byte + int32 length (which counts itself, not the type byte).
 * Bytes are only copied when a message spans chunks; a message larger than `maxMessageSize`
 * (or a length below 4) is a protocol error, raised before any of it is buffered.
 */
import { PortcullisError } from "../../errors.js";

export interface Frame {
  /** Message type byte, e.g. 0x51 'Q'. */
  type: number;
  /** The whole message, header included: what gets forwarded. */
  raw: Buffer;
}

export class Framer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Total size of the message at the head of `pending`, once its header is known. */
  private need = 0;

  constructor(private readonly maxMessageSize: number) {}

  /** Bytes received but not yet part of a whole message. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Feeds a chunk; returns the whole messages it completes, in order. */
  push(chunk: Buffer): Frame[] {
    let buf: Buffer;
    if (this.pendingBytes === 0) {
      buf = chunk;
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // A large message arriving in many chunks is concatenated once, when it is whole.
      if (this.need > 0 && this.pendingBytes < this.need) return [];
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    const frames: Frame[] = [];
    let off = 0;
    this.need = 0;
    while (buf.length - off >= 5) {
      const len = buf.readInt32BE(off + 1);
      if (len < 4 || len + 1 > this.maxMessageSize) {
        throw new PortcullisError(
          len < 4 ? "E_PROTOCOL" : "E_MESSAGE_TOO_LARGE",
          len < 4 ? `invalid message length ${len}` : `message of ${len + 1} bytes exceeds the limit of ${this.maxMessageSize}`,
        );
      }
      const end = off + 1 + len;
      if (end > buf.length) {
        this.need = 1 + len;
        break;
      }
      frames.push({ type: buf[off]!, raw: buf.subarray(off, end) });
      off = end;
    }
    if (off < buf.length) {
      // Copy the tail so the (possibly large) chunk it came from is not retained.
      const rest = Buffer.from(buf.subarray(off));
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    return frames;
  }
}

/**
 * A startup packet whose length PostgreSQL would not read. PostgreSQL answers it with nothing and
 * closes the connection (a COMMERROR, logged on the server only); so does the gateway, since a
 * client that sent it is not speaking the protocol and some (node-postgres) fail on a FATAL here.
 */
export class InvalidStartupLength extends PortcullisError {
  constructor(length: number) {
    super("E_PROTOCOL", `invalid length of startup packet (${length})`);
  }
}

/** Reads one untyped startup-phase packet (int32 length + body) from the head of `buf`. */
export function takeStartupPacket(buf: Buffer, maxLength: number): { packet: Buffer; rest: Buffer } | undefined {
  if (buf.length < 4) return undefined;
  const len = buf.readInt32BE(0);
  if (len < 8 || len > maxLength) throw new InvalidStartupLength(len);
  if (buf.length < len) return undefined;
  return { packet: buf.subarray(0, len), rest: buf.subarray(len) };
}
