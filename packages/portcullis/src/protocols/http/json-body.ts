/**
 * A request body read as JSON for the rules, exactly as every target would read it, or not at all.
 * Targets read more than the gateway could check: Express's json() inflates gzip, deflate and br,
 * decodes any `charset=utf-*`, strips a byte order mark, and with a `type` option parses bodies of
 * any content type; other parsers take the first of duplicate keys, or read numbers exactly. So the
 * gateway reads every non-empty body (whatever its Content-Type) as strict UTF-8 JSON, and calls it
 * undecidable when anything could make a target read it differently: a content coding, a charset
 * other than UTF-8, a byte order mark, bytes that are not UTF-8, text that is not RFC 8259 JSON,
 * a duplicate key, a lone surrogate, nesting past a depth. Numbers whose literal text does not
 * read back from their double are kept as LooseNumber for the comparisons (policy/http.ts).
 */
import type { IncomingHttpHeaders } from "node:http";
import { LooseNumber, plainNumber } from "../../policy/http.js";

export type BodyReading =
  | { kind: "empty" }
  | { kind: "json"; value: unknown }
  | { kind: "undecidable"; reason: string };

/** Deeper documents are refused rather than risk a parser's stack (no API needs 256 levels). */
const MAX_DEPTH = 256;

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function readJsonBody(headers: IncomingHttpHeaders, body: Buffer): BodyReading {
  if (body.length === 0) return { kind: "empty" };
  const codings = (headers["content-encoding"] ?? "").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  if (codings.length) return undecidable("it is content-encoded");
  const charsets = [...(headers["content-type"] ?? "").matchAll(/;\s*charset\s*=\s*"?([^";\s]*)"?/gi)].map((m) => m[1]!.toLowerCase());
  if (charsets.length > 1 || (charsets.length === 1 && charsets[0] !== "utf-8" && charsets[0] !== "utf8")) return undecidable("its charset is not UTF-8");
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return undecidable("it starts with a byte order mark");
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return undecidable("it is not UTF-8");
  }
  try {
    return { kind: "json", value: new StrictJson(text).document() };
  } catch (err) {
    return undecidable(err instanceof JsonRefused ? err.message : "it is not JSON");
  }
}

function undecidable(reason: string): BodyReading {
  return { kind: "undecidable", reason };
}

class JsonRefused extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** RFC 8259 JSON, refusing what parsers disagree on; objects have no prototype (own keys only). */
class StrictJson {
  private i = 0;
  constructor(private readonly s: string) {}

  document(): unknown {
    const v = this.value(0);
    this.ws();
    if (this.i !== this.s.length) throw new Error("trailing text");
    return v;
  }

  private ws(): void {
    for (let c = this.s.charCodeAt(this.i); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = this.s.charCodeAt(++this.i));
  }

  private value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new JsonRefused(`it nests deeper than ${MAX_DEPTH} levels`);
    this.ws();
    switch (this.s.charCodeAt(this.i)) {
      case 0x7b: return this.object(depth);
      case 0x5b: return this.array(depth);
      case 0x22: return this.string();
      case 0x74: return this.word("true", true);
      case 0x66: return this.word("false", false);
      case 0x6e: return this.word("null", null);
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) throw new Error("not JSON");
    this.i = NUMBER.lastIndex;
    const value = Number(m[0]);
    // Most numbers print back as written; only the others need the exact-decimal check.
    return String(value) === m[0] || plainNumber(m[0], value) ? value : new LooseNumber(m[0], value);
  }

  private word<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) throw new Error("not JSON");
    this.i += word.length;
    return v;
  }

  /** Scanned by hand (a RegExp over a megabyte string can exhaust its backtracking stack), decoded by JSON.parse. */
  private string(): string {
    const start = this.i++;
    let escaped = false;
    let surrogate = false;
    for (;;) {
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x22) break;
      if (Number.isNaN(c) || c < 0x20) throw new Error("not JSON");
      if (c >= 0xd800 && c <= 0xdfff) surrogate = true;
      if (c === 0x5c) {
        escaped = true;
        const e = this.s[this.i++];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(this.s.slice(this.i, this.i + 4))) throw new Error("not JSON");
          this.i += 4;
        } else if (e === undefined || !'"\\/bfnrt'.includes(e)) throw new Error("not JSON");
      }
    }
    const v = escaped ? (JSON.parse(this.s.slice(start, this.i)) as string) : this.s.slice(start + 1, this.i - 1);
    // A lone surrogate (only an escape can make one: the text came from valid UTF-8) is U+FFFD to some parsers and an error to others.
    if ((escaped || surrogate) && /\p{Cs}/u.test(v)) throw new JsonRefused("a string holds a lone surrogate");
    return v;
  }

  private array(depth: number): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === "]") return out;
      if (c !== ",") throw new Error("not JSON");
    }
  }

  private object(depth: number): Record<string, unknown> {
    this.i++;
    const out = Object.create(null) as Record<string, unknown>;
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') throw new Error("not JSON");
      const key = this.string();
      // Parsers keep the first or the last of duplicate keys (or refuse): nobody can say which counts.
      if (Object.hasOwn(out, key)) throw new JsonRefused("it has a duplicate key");
      this.ws();
      if (this.s[this.i++] !== ":") throw new Error("not JSON");
      out[key] = this.value(depth + 1);
      this.ws();
      const c = this.s[this.i++];
      if (c === "}") return out;
      if (c !== ",") throw new Error("not JSON");
    }
  }
}
