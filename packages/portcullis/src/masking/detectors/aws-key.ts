import { ci, type Detector } from "./types.js";

const B64 = "[A-Za-z0-9/+]";
/** A 40-character secret key as a whole token. */
const SECRET = `${B64}{40}(?![A-Za-z0-9/+=])`;
/** `aws_secret...` / `AWS-SECRET...` / `secret_access_key` / `SecretAccessKey`, any case. */
const LABEL = `(?:${ci("aws")}[_ .-]?${ci("secret")}[\\w.-]*|${ci("secret")}[_ .-]?${ci("access")}[_ .-]?${ci("key")})`;

export const awsKey: Detector = {
  name: "aws_key",
  description:
    "AWS credentials. Access key ids: `AKIA` (long-term), `ASIA` (temporary, STS), `ABIA`, `ACCA` followed by 16 " +
    "upper-case letters or digits, 20 characters in all, as a whole token. Secret access keys: 40 characters of " +
    "`A-Za-z0-9/+` as a whole token, only (a) after a label like `aws_secret_access_key`, `AWS_SECRET`, " +
    "`aws-secret-key`, `secret_access_key` or `SecretAccessKey` (any case) followed by `:` or `=` (optionally quoted: " +
    "`\"SecretAccessKey\": \"...\"`, `AWS_SECRET_ACCESS_KEY=...`, `aws_secret_access_key = ...`), or (b) directly " +
    "after an access key id, separated by 1–6 characters that cannot belong to a key (`,`, `:`, a space, a tab, quotes). " +
    "False positives: a 40-character token in those two places (masking it is intended). Not matched: a secret key on " +
    "its own, far from a label or key id (a bare 40-character base64 string is indistinguishable from a hash or a " +
    "random id), a secret before its key id, and key ids of principals (`AIDA`, `AROA`), which are identifiers, not " +
    "credentials.",
  patterns: [
    `(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])(?:[^A-Za-z0-9/+\\n]{1,6}${SECRET})?`,
    `[:=]\\s*["']?${SECRET}`,
  ],
  anchors: ["A(?:KIA|SIA|BIA|CCA)", `[:=](?<=${LABEL}["']?\\s*[:=])`],
  scan: "sparse",
  start: (_text, anchor) => anchor,
  values(match) {
    // A key id, possibly followed by its secret; or a label separator followed by a secret.
    if (match.charCodeAt(0) === 65 /* A */) return match.length > 20 ? [[0, 20], [match.length - 40, match.length]] : [[0, 20]];
    return [[match.length - 40, match.length]];
  },
};
