/**
 * Where unqualified names resolve: the session's search_path, as far as the gateway can follow it.
 * A rule on `vault.secrets` must catch `SELECT * FROM secrets` once `vault` is on the path, and
 * must not catch it when `vault` is not. When the path cannot be known (SET LOCAL, set_config),
 * it is "unknown" and every schema is assumed.
 */
export type SearchPath = readonly string[] | "unknown";

/** PostgreSQL's default. */
export const DEFAULT_SEARCH_PATH: readonly string[] = ["$user", "public"];

/** Parses a search_path value as SHOW prints it: `"$user", public, "My Schema"`. */
export function parseSearchPath(text: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,\s]+))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!.toLowerCase());
    if (m[0].length === 0) break;
  }
  return out;
}

/**
 * The schemas an unqualified name may resolve to, in order: pg_catalog is always searched (first,
 * unless the path places it); `$user` is the target user. undefined: any schema.
 */
export function schemasOf(path: SearchPath, user?: string): readonly string[] | undefined {
  if (path === "unknown") return undefined;
  const schemas = path.flatMap((s) => (s === "$user" ? (user ? [user] : []) : [s]));
  return schemas.includes("pg_catalog") ? schemas : ["pg_catalog", ...schemas];
}

/** The path after a statement's change (`reset` returns to the session's starting path). */
export function nextSearchPath(current: SearchPath, initial: SearchPath, change: readonly string[] | "reset" | "unknown" | undefined): SearchPath {
  if (change === undefined) return current;
  if (change === "reset") return initial;
  return change;
}
