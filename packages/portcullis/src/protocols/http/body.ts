/** Bodies: read with a limit, decode content codings (RFC 9110 §8.4.1), and tell JSON and text from the rest. */
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { type Transform } from "node:stream";
import { brotliDecompress, createBrotliDecompress, createGunzip, createInflate, gunzip, inflate, inflateRaw } from "node:zlib";
import { PortcullisError } from "../../errors.js";

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);
const brotliAsync = promisify(brotliDecompress);

/** Reads a whole body; rejects with E_MESSAGE_TOO_LARGE past `limit` bytes (and stops reading). */
export async function readBody(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      stream.destroy();
      throw new PortcullisError("E_MESSAGE_TOO_LARGE", `body larger than ${limit} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}

/** How much of an oversized request body is read and thrown away so that the 413 can be heard. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

/**
 * Reads an agent's request body; past `limit` bytes (declared or sent) rejects with
 * E_MESSAGE_TOO_LARGE (413). The rest of the body is then read and discarded, up to DRAIN_LIMIT,
 * rather than the socket destroyed: a socket closed with unread data answers with a TCP reset,
 * and the client loses the 413 (it sees a reset connection instead).
 */
export function readRequestBody(req: Readable & { headers: IncomingHttpHeaders }, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError);
      let drained = 0;
      req.on("data", (c: Buffer) => {
        drained += c.length;
        if (drained > DRAIN_LIMIT) req.destroy();
      });
      req.on("error", () => {});
      req.resume();
      reject(new PortcullisError("E_MESSAGE_TOO_LARGE", `request body larger than max_request_body (${limit} bytes)`));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return tooLarge();
      chunks.push(c);
    };
    const onEnd = () => resolve(Buffer.concat(chunks, size));
    const onError = (err: Error) => reject(err);
    if (Number(req.headers["content-length"]) > limit) return tooLarge();
    req.on("data", onData).on("end", onEnd).on("error", onError);
    // A client that leaves mid-body ends the wait (a rejection after the resolve is a no-op).
    req.once("close", () => reject(new PortcullisError("E_PROTOCOL", "the client left before its request body ended")));
  });
}

/** Undoes the content codings the target applied, last applied first; throws on one it does not know. */
export async function decodeContent(body: Buffer, contentEncoding: string | undefined, limit: number): Promise<Buffer> {
  const codings = (contentEncoding ?? "").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  let out = body;
  for (const coding of codings.reverse()) {
    const opts = { maxOutputLength: limit };
    switch (coding) {
      case "gzip": case "x-gzip": out = await gunzipAsync(out, opts); break;
      // "deflate" is zlib-wrapped by the standard, raw in some servers: accept both.
      case "deflate": out = await inflateAsync(out, opts).catch(() => inflateRawAsync(out, opts)); break;
      case "br": out = await brotliAsync(out, opts); break;
      default: throw new PortcullisError("E_PROTOCOL", `content coding "${coding}" cannot be decoded for masking`);
    }
  }
  return out;
}

/** Streaming decoders for the codings applied, in the order to apply them; throws on one it does not know. */
export function contentDecoders(contentEncoding: string | undefined): Transform[] {
  const codings = (contentEncoding ?? "").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  return codings.reverse().map((coding) => {
    switch (coding) {
      case "gzip": case "x-gzip": return createGunzip();
      case "deflate": return createInflate();
      case "br": return createBrotliDecompress();
      default: throw new PortcullisError("E_PROTOCOL", `content coding "${coding}" cannot be decoded for masking`);
    }
  });
}

export type BodyKind = "json" | "text" | "binary";

export function bodyKind(contentType: string | undefined): BodyKind {
  const t = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (t === "application/json" || t.endsWith("+json") || t === "application/x-ndjson") return "json";
  if (t.startsWith("text/") || t === "application/xml" || t.endsWith("+xml") || t === "application/x-www-form-urlencoded" || t === "application/javascript") return "text";
  // No content type at all is treated as text: masking it costs little and guessing "binary" would pass it unmasked.
  return t === "" ? "text" : "binary";
}
