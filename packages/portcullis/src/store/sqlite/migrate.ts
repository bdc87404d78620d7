/**
 * Applies pending migrations to an embedded store. Runs in one IMMEDIATE transaction so that
 * two processes opening the same file at once cannot both apply a version, and a failed
 * migration leaves the file exactly as it was.
 */
import type { Database } from "better-sqlite3";
import { PortcullisError } from "../../errors.js";
import type { Migration } from "./migrations.js";

const CREATE_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`;

/** Highest applied version; 0 for a fresh file. */
export function schemaVersion(db: Database): number {
  db.exec(CREATE_TABLE);
  const v = db.prepare("SELECT max(version) FROM schema_migrations").pluck().get();
  return typeof v === "number" ? v : 0;
}

/** Returns the versions applied by this call (empty when the schema was current). */
export function applyMigrations(db: Database, migrations: readonly Migration[]): number[] {
  assertOrdered(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  const run = db.transaction((): number[] => {
    const current = schemaVersion(db);
    // An older build must not write into a schema it does not understand.
    if (current > latest) {
      throw new PortcullisError(
        "E_STORE",
        `store schema version ${current} is newer than this build supports (${latest}); upgrade portcullis`,
      );
    }
    const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    return applied;
  });
  return run.immediate();
}

function assertOrdered(migrations: readonly Migration[]): void {
  let prev = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= prev) {
      throw new PortcullisError("E_STORE", `migration list out of order at version ${m.version} (${m.name})`);
    }
    prev = m.version;
  }
}
