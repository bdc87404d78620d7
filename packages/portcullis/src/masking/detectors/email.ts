import type { Detector } from "./types.js";

const LOCAL = "[\\w.%+-]";
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

export const email: Detector = {
  name: "email",
  description:
    "Email addresses: a local part of letters, digits and `._%+-` (up to 64 characters, not starting with `.`), " +
    "`@`, one or more DNS labels and an alphabetic top-level domain of 2–24 letters. Shape only, no confirmation. " +
    "False positives: anything address-shaped is masked, including role accounts (`noreply@example.com`), scp-style git " +
    "remotes (`git@github.com:org/repo`) and the `user:password@host` part of a URL (the password then being masked is " +
    "intended). Not matched: quoted local parts, IP-literal domains (`a@[10.0.0.1]`), hosts without a dot " +
    "(`root@localhost`) and non-ASCII (IDN) domains unless written in punycode.",
  patterns: [`(?<!${LOCAL})[A-Za-z0-9_]${LOCAL}{0,63}@(?:${LABEL}\\.)+[A-Za-z]{2,24}(?![A-Za-z0-9])`],
  prefilter: { chars: "@" },
};
