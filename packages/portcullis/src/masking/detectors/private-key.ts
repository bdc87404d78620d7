import type { Detector } from "./types.js";

const LABEL = "(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?";

export const privateKey: Detector = {
  name: "private_key",
  description:
    "PEM and PGP private key blocks: from `-----BEGIN ... PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP " +
    "`PRIVATE KEY BLOCK`, plain PKCS#8) through the matching `-----END ... -----` line, across lines (real newlines or " +
    "`\\n` escapes). When the END line is missing (a truncated value), the header and every following character that " +
    "can belong to a key body (base64, whitespace, `\\`, and `Proc-Type:`/`DEK-Info:` header characters) are masked. " +
    "An END line is looked for within 16 KiB (larger than any real key). " +
    "False positives: none known; public keys and certificates (`BEGIN PUBLIC KEY`, `BEGIN CERTIFICATE`) are not " +
    "matched. The whole block is one match, so `partial` keeps its last 4 characters (`----`).",
  patterns: [`-----BEGIN ${LABEL}-----(?:[\\s\\S]{0,16384}?-----END ${LABEL}-----|[A-Za-z0-9+/=\\s:,.\\\\-]*)`],
  anchors: ["-----BEGIN "],
  scan: "sparse",
  start: (_text, anchor) => anchor,
};
