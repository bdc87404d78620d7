/**
 * JSON masking for documents that arrive in pieces (an HTTP response of any size): the same token
 * rules as `maskJsonText` (json-masker.ts), applied as the text streams. Memory is bounded by the
 * largest single token (a string or a number), never by the document: everything before the token
 * being read has already been handed on. A sequence of top-level values (NDJSON) is accepted.
 *
 * Invalid JSON is an error (E_PROTOCOL): by then part of the document has left, so the caller ends
 * the response rather than pass the rest unmasked.
 */
import { PortcullisError } from "../errors.js";
import { NUMBER, type TokenHandlers, decode as decodeToken, skipWs } from "./json-masker.js";

type Expect = "value" | "value-or-close" | "key" | "key-or-close" | "colon" | "after";

const LITERALS = ["true", "false", "null"] as const;

const invalid = (why: string) => new PortcullisError("E_PROTOCOL", `response is not valid JSON (${why}); it was cut off rather than passed unmasked`);

export class JsonStreamMasker {
  private buf = "";
  private expect: Expect = "value";
  private readonly stack: { object: boolean; masked: string | undefined }[] = [];
  private masked: string | undefined;
  private key = "";

  constructor(private readonly h: TokenHandlers, private readonly maxToken = 16 * 1024 * 1024) {}

  /** Masks what can be masked of the text so far; returns it (the rest waits for more). */
  push(chunk: string): string {
    this.buf += chunk;
    return this.drain(false);
  }

  /** The rest; throws when the document is incomplete or invalid. */
  end(): string {
    const out = this.drain(true);
    if (this.stack.length > 0 || (this.expect !== "after" && this.expect !== "value") || this.buf.trim() !== "") throw invalid("truncated");
    return out;
  }

  private drain(final: boolean): string {
    const b = this.buf;
    const n = b.length;
    let out = "";
    let emitFrom = 0;
    let pos = 0;
    const edit = (start: number, end: number, replacement: string | undefined) => {
      if (replacement === undefined) return;
      out += b.slice(emitFrom, start) + replacement;
      emitFrom = end;
    };
    for (;;) {
      const i = skipWs(b, pos);
      if (i >= n) {
        pos = i;
        break;
      }
      const c = b.charCodeAt(i);
      if (this.expect === "key-or-close") {
        if (c === 125 /* } */) {
          this.stack.pop();
          pos = i + 1;
          this.expect = "after";
        } else this.expect = "key";
        continue;
      }
      if (this.expect === "value-or-close") {
        if (c === 93 /* ] */) {
          this.stack.pop();
          pos = i + 1;
          this.expect = "after";
        } else {
          this.expect = "value";
          this.masked = this.stack.at(-1)!.masked;
        }
        continue;
      }
      if (this.expect === "key") {
        if (c !== 34) throw invalid("expected a key");
        const end = stringEnd(b, i);
        if (end === -1) {
          if (final) throw invalid("unterminated key");
          pos = i;
          break;
        }
        const name = decode(b.slice(i, end));
        edit(i, end, this.h.key(name));
        this.key = name;
        pos = end;
        this.expect = "colon";
        continue;
      }
      if (this.expect === "colon") {
        if (c !== 58) throw invalid("expected ':'");
        pos = i + 1;
        this.masked = this.stack.at(-1)!.masked ?? (this.h.keyMatches(this.key) ? this.key : undefined);
        this.expect = "value";
        continue;
      }
      if (this.expect === "after") {
        const top = this.stack.at(-1);
        if (!top) {
          // Another top-level value (NDJSON, JSON text sequences).
          this.expect = "value";
          this.masked = undefined;
          continue;
        }
        if (c === 44 /* , */) {
          pos = i + 1;
          this.expect = top.object ? "key" : "value";
          if (!top.object) this.masked = top.masked;
        } else if (c === (top.object ? 125 : 93)) {
          this.stack.pop();
          pos = i + 1;
        } else throw invalid(`unexpected '${String.fromCharCode(c)}'`);
        continue;
      }
      // A value.
      if (c === 123 || c === 91) {
        const object = c === 123;
        this.stack.push({ object, masked: this.masked });
        pos = i + 1;
        this.expect = object ? "key-or-close" : "value-or-close";
        continue;
      }
      if (c === 34) {
        const end = stringEnd(b, i);
        if (end === -1) {
          if (final) throw invalid("unterminated string");
          pos = i;
          break;
        }
        edit(i, end, this.h.string(decode(b.slice(i, end)), this.masked));
        pos = end;
        this.expect = "after";
        continue;
      }
      let raw: string | undefined;
      const literal = LITERALS.find((l) => b.startsWith(l, i));
      if (literal) raw = literal;
      else if (LITERALS.some((l) => l.startsWith(b.slice(i, i + 5)) && i + 5 > n)) {
        if (final) throw invalid("truncated literal");
        pos = i;
        break;
      } else {
        NUMBER.lastIndex = i;
        raw = NUMBER.exec(b)?.[0];
        if (raw === undefined || raw === "-") {
          if (i + 1 >= n && c === 45 && !final) {
            pos = i;
            break;
          }
          throw invalid(`unexpected '${String.fromCharCode(c)}'`);
        }
        // A number followed only by number characters up to the end of what has arrived ("-12." of
        // "-12.5e3") may go on in the next piece.
        let k = i + raw.length;
        while (k < n && isNumberChar(b.charCodeAt(k))) k++;
        if (k >= n && !final) {
          pos = i;
          break;
        }
      }
      edit(i, i + raw.length, this.h.scalar(raw, this.masked));
      pos = i + raw.length;
      this.expect = "after";
    }
    out += b.slice(emitFrom, pos);
    this.buf = b.slice(pos);
    if (this.buf.length > this.maxToken) throw invalid(`a single value larger than ${this.maxToken} characters`);
    return out;
  }
}

function isNumberChar(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45;
}

/** The end of the string token at i (exclusive); -1 when it has not all arrived. Throws on a control character. */
function stringEnd(text: string, i: number): number {
  const n = text.length;
  let j = i + 1;
  for (;;) {
    if (j >= n) return -1;
    const c = text.charCodeAt(j);
    if (c === 34) return j + 1;
    if (c === 92) {
      j += 2;
      continue;
    }
    if (c < 0x20) throw invalid("control character in a string");
    j++;
  }
}

function decode(token: string): string {
  try {
    return decodeToken(token);
  } catch {
    throw invalid("bad escape in a string");
  }
}
