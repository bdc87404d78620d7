import type { Detector } from "./types.js";

/** Prefix-specific shapes. Every token is a whole token: not preceded or followed by `[A-Za-z0-9_-]`. */
const TOKENS = [
  "gh[pousr]_[A-Za-z0-9]{36,251}", // GitHub classic PAT, OAuth, user-to-server, server-to-server, refresh
  "github_pat_[A-Za-z0-9_]{50,251}", // GitHub fine-grained PAT
  "xox[abpr]-[A-Za-z0-9-]{10,250}", // Slack bot / app / user / refresh tokens
  "[rs]k_(?:live|test)_[A-Za-z0-9]{20,247}", // Stripe secret and restricted keys
  "sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\\d\\d-)?[A-Za-z0-9_-]{20,200}", // OpenAI, Anthropic
  "AIza[0-9A-Za-z_-]{35}", // Google API key
  "glpat-[A-Za-z0-9_-]{20,64}(?:\\.[A-Za-z0-9_-]{2,64}){0,3}", // GitLab personal access token
  "npm_[A-Za-z0-9]{36}", // npm access token
  "SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}", // SendGrid
  "SK[0-9a-f]{32}", // Twilio API key SID
  "hf_[A-Za-z0-9]{34}", // Hugging Face
];

/** Tokens are whole `[A-Za-z0-9_-]` runs: the start is where the run holding the anchor begins. */
export function tokenStart(text: string, anchor: number): number {
  let i = anchor;
  const stop = Math.max(0, anchor - 16);
  while (i > stop) {
    const c = text.charCodeAt(i - 1);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45) i--;
    else break;
  }
  return i;
}

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

/**
 * Randomness check for the part after the prefix: real tokens mix letters and digits. `sk-` is
 * also a common prefix of slugs (`sk-learn-...`), so it further needs upper- and lower-case letters.
 */
export function tokenPlausible(match: string): boolean {
  const body = match.replace(/^(?:gh[pousr]_|github_pat_|xox[abpr]-|[rs]k_(?:live|test)_|sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?|AIza|glpat-|npm_|SG\.|SK|hf_)/, "");
  if (count(body, /\d/g) === 0 || count(body, /[A-Za-z]/g) === 0) return false;
  if (match.startsWith("sk-") && (!/[A-Z]/.test(body) || !/[a-z]/.test(body))) return false;
  return true;
}

export const apiToken: Detector = {
  name: "api_token",
  description:
    "API tokens with a known prefix, each with its length rule: GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` (36+ " +
    "characters after the prefix) and `github_pat_`, Slack `xoxa-`/`xoxb-`/`xoxp-`/`xoxr-`, Stripe `sk_live_`/`rk_live_` " +
    "(and `_test_` keys), OpenAI `sk-`/`sk-proj-`/`sk-svcacct-`/`sk-admin-` and Anthropic `sk-ant-api03-` (20+ " +
    "characters), Google `AIza` + 35, GitLab `glpat-`, npm `npm_` + 36, SendGrid `SG.<22>.<43>`, Twilio `SK` + 32 " +
    "lower-case hex, Hugging Face `hf_` + 34. The part after the prefix must contain both letters and digits (for `sk-` " +
    "also both cases), which keeps slugs like `sk-learn-tutorial-for-beginners` out. False positives: identifiers that " +
    "happen to use one of these prefixes with a random-looking tail of the right length. Not matched: tokens without a " +
    "known prefix (a generic high-entropy string is indistinguishable from a hash or an id) and publishable keys " +
    "(`pk_live_`), which are public by design.",
  patterns: [`(?<![\\w-])(?:${TOKENS.join("|")})(?![\\w-])`],
  anchors: [
    "_(?<=gh[pousr]_|github_pat_|[rs]k_live_|[rs]k_test_|npm_|hf_)",
    "-(?<=xox[abpr]-|sk-|glpat-)",
    "AIza",
    "S(?:G\\.|K[0-9a-f])",
  ],
  scan: "sparse",
  start: tokenStart,
  confirm: tokenPlausible,
};
