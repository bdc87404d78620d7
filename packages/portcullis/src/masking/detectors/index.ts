/**
 * The detector registry. Order is priority: when two detectors match at the same position, the
 * first one listed here whose pattern matches (and whose confirmation passes) wins.
 */
import { apiToken } from "./api-token.js";
import { awsKey } from "./aws-key.js";
import { creditCard } from "./credit-card.js";
import { email } from "./email.js";
import { iban } from "./iban.js";
import { ipv4, ipv6 } from "./ip.js";
import { jwt } from "./jwt.js";
import { phone } from "./phone.js";
import { privateKey } from "./private-key.js";
import type { Detector } from "./types.js";
import { usSsn } from "./us-ssn.js";

export type { Detector } from "./types.js";

/** Every detector, in priority order. */
export const DETECTORS: readonly Detector[] = [
  privateKey, jwt, apiToken, awsKey, email, iban, creditCard, usSsn, ipv6, ipv4, phone,
];

/** Detector names, in the order of `DETECTORS`. */
export const KNOWN_DETECTORS: readonly string[] = DETECTORS.map((d) => d.name);

const byName = new Map(DETECTORS.map((d) => [d.name, d]));

export function getDetector(name: string): Detector | undefined {
  return byName.get(name);
}

export { apiToken, awsKey, creditCard, email, iban, ipv4, ipv6, jwt, phone, privateKey, usSsn };
