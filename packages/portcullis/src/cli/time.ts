/** Times on the command line: an ISO timestamp, or a duration meaning "that long ago". */
import { parseDuration } from "../config/units.js";
import { CliError } from "./output.js";

export function parseTime(value: string, flag: string): Date {
  const ago = parseDuration(value);
  if (ago !== undefined) return new Date(Date.now() - ago);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new CliError(`${flag}: expected an ISO time or a duration such as "24h", got "${value}"`);
  return new Date(t);
}
