/**
 * Masking of response bodies as they stream: a JSON document of any size, server-sent events
 * event by event, and other text line by line. Each keeps at most one unit (a JSON token, an event,
 * a line) in memory; a unit larger than the limit ends the response rather than pass unmasked.
 */
import { PortcullisError } from "../../errors.js";
import type { HttpMasking, TextStream } from "./masking.js";

const MAX_UNIT = 16 * 1024 * 1024;

const tooLarge = (what: string) => new PortcullisError("E_PROTOCOL", `a single ${what} larger than ${MAX_UNIT} characters cannot be masked; the response was cut off`);

/** Server-sent events: each complete event's data is masked (as JSON when it is JSON), then sent. */
export function sseStream(masking: HttpMasking): TextStream {
  let carry = "";
  const maskEvent = (event: string): string => event.split(/(\r\n|\r|\n)/).map((line) => {
    if (!line.startsWith("data:")) return line;
    const value = line.slice(5).replace(/^ /, "");
    const t = value.trimStart();
    const masked = (t.startsWith("{") || t.startsWith("[") ? masking.json(value) : masking.text(value)) ?? value;
    return `data: ${masked}`;
  }).join("");
  return {
    push(chunk) {
      carry += chunk;
      let out = "";
      for (;;) {
        const m = /\r\n\r\n|\n\n|\r\r/.exec(carry);
        if (!m) break;
        const end = m.index + m[0].length;
        out += maskEvent(carry.slice(0, m.index)) + m[0];
        carry = carry.slice(end);
      }
      if (carry.length > MAX_UNIT) throw tooLarge("event");
      return out;
    },
    end() {
      const rest = carry ? maskEvent(carry) : "";
      carry = "";
      return rest;
    },
  };
}

/** Other text: masked line by line (detectors find nothing across a line break worth the risk of buffering it all). */
export function lineStream(masking: HttpMasking): TextStream {
  let carry = "";
  return {
    push(chunk) {
      carry += chunk;
      const cut = carry.lastIndexOf("\n");
      if (cut < 0) {
        if (carry.length > MAX_UNIT) throw tooLarge("line");
        return "";
      }
      const lines = carry.slice(0, cut + 1);
      carry = carry.slice(cut + 1);
      return masking.text(lines) ?? lines;
    },
    end() {
      const rest = carry;
      carry = "";
      return rest ? masking.text(rest) ?? rest : "";
    },
  };
}
