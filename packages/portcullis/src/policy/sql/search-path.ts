/**
 * Where unqualified names resolve: the session's search_path, as far as the gateway can follow it.
 * A rule on `vault.secrets` must catch `SELECT * FROM secrets` once `vault` is on the path, and
 * must not catch it when `vault` is not. When the path cannot be known (SET LOCAL, set_config, a
 * change the target undid with its transaction), it is "unknown": every schema is assumed by rules
 * that refuse, and none by rules that allow (session-objects.ts follows the target's path).
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
 * unless the path places it); `$user` is the target user, and is left out when `user` is undefined
 * (the target said that schema does not exist). undefined: any schema.
 */
export function schemasOf(path: SearchPath, user?: string): readonly string[] | undefined {
  if (path === "unknown") return undefined;
  const schemas = path.flatMap((s) => (s === "$user" ? (user ? [user] : []) : [s]));
  return schemas.includes("pg_catalog") ? schemas : ["pg_catalog", ...schemas];
}

export type SearchPathChange = readonly string[] | "reset" | "unknown";

/** What a statement's run does to the path: code the gateway cannot read (DO, dynamic SQL, CALL) may do anything. */
export function pathChangeOf(info: { kinds: readonly string[]; setsSearchPath?: SearchPathChange | undefined }): SearchPathChange | undefined {
  if (info.kinds.includes("dynamic") || info.kinds.includes("call")) return "unknown";
  return info.setsSearchPath;
}

/** The path after a statement's change (`reset` returns to the session's starting path). */
export function nextSearchPath(current: SearchPath, initial: SearchPath, change: SearchPathChange | undefined): SearchPath {
  if (change === undefined) return current;
  if (change === "reset") return initial;
  return change;
}

/** The path statements run under, and whether the open transaction has changed it. */
export interface PathWalk {
  path: SearchPath;
  changed: boolean;
}

/**
 * The walk after one statement that succeeds. A transaction statement (COMMIT, ROLLBACK, SAVEPOINT,
 * ...) after a change makes the path unknown: whether the change survives is for the target to say.
 */
export function stepSearchPath(w: PathWalk, initial: SearchPath, change: SearchPathChange | undefined, transaction: boolean): PathWalk {
  if (change !== undefined) return { path: nextSearchPath(w.path, initial, change), changed: true };
  if (transaction && w.changed) return { path: "unknown", changed: true };
  return w;
}

/**
 * Whether an unqualified relation `name` can only resolve into schemas `matches` accepts. The gateway
 * does not know which schemas hold the name, so every schema on the path must be accepted, except
 * pg_catalog for names it cannot hold (its relations are all `pg_*`, and only a superuser adds to
 * it). Used by rules that allow: they must not admit a name the target resolves elsewhere.
 */
export function resolvesOnlyInto(schemas: readonly string[], name: string, matches: (schema: string) => boolean, relation: boolean): boolean {
  return schemas.every((s) => matches(s) || (relation && s === "pg_catalog" && !name.toLowerCase().startsWith("pg_")));
}
