import type { Detector } from "./types.js";

/** Whether a base64url segment decodes to a JSON object carrying a string `alg` (a JOSE header). */
export function joseHeader(segment: string): boolean {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof header === "object" && header !== null && typeof (header as { alg?: unknown }).alg === "string";
  } catch {
    return false;
  }
}

export const jwt: Detector = {
  name: "jwt",
  description:
    "JSON Web Tokens (JWS compact form `header.payload.signature`, also unsigned tokens with an empty signature) and " +
    "JWE compact tokens (five segments): base64url segments whose first segment starts with `eyJ` (base64 of `{\"`) " +
    "and decodes to a JSON object with a string `alg`, as a whole token. False positives: none known beyond real JOSE " +
    "objects. Not matched: tokens whose header is not base64url JSON, or a token split across lines.",
  patterns: [
    "(?<![\\w-])eyJ[\\w-]{8,}(?:\\.[\\w-]*\\.[\\w-]+\\.[\\w-]+\\.[\\w-]+|\\.[\\w-]+\\.[\\w-]*)(?![\\w-])",
  ],
  anchors: ["J(?<=eyJ)"],
  scan: "sparse",
  start: (_text, anchor) => anchor - 2,
  confirm(match) {
    return joseHeader(match.slice(0, match.indexOf(".")));
  },
};
