/**
 * Masking of HTTP bodies for one connection: JSON by key (the `keys` of its masking rules) and by
 * value (detectors), text by detectors. Compiled once per connection and configuration.
 */
import type { LoadedConfig } from "../../config/load.js";
import { compileJsonMasker, type JsonMasker } from "../../masking/json-masker.js";
import { JsonStreamMasker } from "../../masking/json-stream.js";
import { compileTextMasker, type TextMasker } from "../../masking/text-masker.js";

export interface HttpMasking {
  /** Whether any rule applies: otherwise bodies stream through untouched. */
  active: boolean;
  /** Masked JSON text; undefined when nothing changed. */
  json(text: string): string | undefined;
  /** Masked plain text; undefined when nothing changed. */
  text(text: string): string | undefined;
  /** A masker for one JSON document that arrives in pieces. */
  jsonStream(): TextStream;
}

/** Text in, masked text out, piece by piece; `end` flushes (and throws on invalid input). */
export interface TextStream {
  push(chunk: string): string;
  end(): string;
}

const compiled = new WeakMap<LoadedConfig, Map<string, HttpMasking>>();

export function httpMasking(config: LoadedConfig, connection: string, key: Buffer): HttpMasking {
  let perConfig = compiled.get(config);
  if (!perConfig) compiled.set(config, (perConfig = new Map()));
  let m = perConfig.get(connection);
  if (m) return m;
  const rules = config.masking.filter((r) => (!r.connections || r.connections.includes(connection)) && (r.keys || r.detectors));
  const json: JsonMasker[] = rules.map((r) => compileJsonMasker({
    ...(r.keys ? { keys: r.keys } : {}),
    keyStrategy: r.strategy,
    key,
    ...(r.detectors ? { detectors: compileTextMasker(r.detectors, r.strategy, key) } : {}),
  }));
  const text: TextMasker[] = rules.filter((r) => r.detectors).map((r) => compileTextMasker(r.detectors!, r.strategy, key));
  const chain = (fns: ((s: string) => string | undefined)[]) => (input: string) => {
    let out: string | undefined;
    for (const f of fns) out = f(out ?? input) ?? out;
    return out;
  };
  m = {
    active: rules.length > 0,
    json: chain(json.map((j) => (s: string) => j.maskJsonText(s))),
    text: chain(text.map((t) => (s: string) => t.mask(s))),
    jsonStream: () => {
      // One streaming masker per rule, each feeding the next.
      const stages = json.map((j) => new JsonStreamMasker(j.tokens));
      return {
        push: (chunk) => stages.reduce((acc, st) => st.push(acc), chunk),
        end: () => stages.reduce((acc, st) => st.push(acc) + st.end(), ""),
      };
    },
  };
  perConfig.set(connection, m);
  return m;
}
