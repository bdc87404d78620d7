import { ci, type Detector } from "./types.js";

const ACCESS_KEY = "(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}";
/** `aws_secret...` / `AWS-SECRET...` / `secret_access_key` / `SecretAccessKey` in any case. */
const SECRET_LABEL = `(?:${ci("aws")}[_ .-]?${ci("secret")}\\w*|${ci("secret")}[_ .-]?${ci("access")}[_ .-]?${ci("key")})`;
const B64 = "[A-Za-z0-9/+]";

export const awsKey: Detector = {
  name: "aws_key",
  description:
    "AWS credentials. Access key ids: `AKIA` (long-term), `ASIA` (temporary, STS), `ABIA`, `ACCA` followed by 16 " +
    "upper-case letters or digits, 20 characters in all, as a whole token. Secret access keys: 40 characters of " +
    "`A-Za-z0-9/+`, as a whole token, only when directly preceded — within 1 to 6 characters that are not part of the " +
    "key (`=`, `: `, `\", \"`, a comma, a tab) — by an access key id or by a label like `aws_secret_access_key`, " +
    "`AWS_SECRET`, `aws-secret-key`, `secret_access_key` or `SecretAccessKey` (any case). False positives: a 40-character " +
    "token right after such a label or key id (masking it is intended). Not matched: a secret key on its own, far from " +
    "any label or key id (a bare 40-character base64 string is indistinguishable from a hash or a random id), and " +
    "key ids of principals (`AIDA`, `AROA`), which are identifiers, not credentials.",
  patterns: [
    `(?<![A-Za-z0-9])${ACCESS_KEY}(?![A-Za-z0-9])`,
    `(?<!${B64})${B64}{40}(?![A-Za-z0-9/+=])(?<=(?:${SECRET_LABEL}|${ACCESS_KEY})[^A-Za-z0-9/+\\n]{1,6}${B64}{40})`,
  ],
  prefilter: { literals: `A(?:KIA|SIA|BIA|CCA)|${ci("secret")}` },
};
