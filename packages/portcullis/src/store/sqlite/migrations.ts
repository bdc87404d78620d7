/**
 * Schema history of the embedded store. Append only: a released migration is never edited,
 * because stores in the field have already applied it; a change is a new version.
 */
export interface Migration {
  /** Strictly increasing; recorded in `schema_migrations`. */
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "sessions",
    sql: `
      CREATE TABLE sessions (
        id             TEXT PRIMARY KEY,
        protocol       TEXT NOT NULL,
        connection     TEXT NOT NULL,
        sub            TEXT NOT NULL,
        groups         TEXT NOT NULL DEFAULT '[]',  -- JSON array of group names
        iss            TEXT NOT NULL,
        jti            TEXT,
        client_address TEXT NOT NULL,
        run            TEXT NOT NULL DEFAULT '{}',  -- JSON: signed run context
        run_hints      TEXT NOT NULL DEFAULT '{}',  -- JSON: unsigned client hints, kept apart
        started_at     INTEGER NOT NULL,            -- ms since the epoch
        ended_at       INTEGER,
        end_reason     TEXT
      );
      CREATE INDEX sessions_sub ON sessions (sub);
      CREATE INDEX sessions_connection ON sessions (connection);
      CREATE INDEX sessions_started_at ON sessions (started_at);
    `,
  },
];
