/**
 * Structured logs. The rule is that no token, credential or row data is ever handed to the
 * logger; the redaction list is a second line of defence for keys that must never appear.
 */
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

const REDACT = ["password", "token", "authorization", "secret", "*.password", "*.token", "*.authorization", "*.secret", "credentials"];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { svc: "portcullis" }, redact: { paths: REDACT, censor: "[redacted]" } }, destination ?? pino.destination(2));
}
