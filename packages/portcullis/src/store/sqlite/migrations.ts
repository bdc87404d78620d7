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
  {
    version: 2,
    name: "audit and recordings",
    sql: `
      -- The hash-chained audit log. Rows are only ever inserted; verify recomputes every hash.
      CREATE TABLE audit_records (
        seq     INTEGER PRIMARY KEY,         -- 1, 2, 3, ... without gaps
        at      INTEGER NOT NULL,            -- ms since the epoch
        type    TEXT NOT NULL,
        session TEXT,
        data    TEXT NOT NULL,               -- canonical JSON
        prev    TEXT NOT NULL,               -- hash of record seq-1 (64 zeros for the first)
        hash    TEXT NOT NULL                -- SHA-256 of the canonical encoding of this record
      );
      CREATE INDEX audit_records_at ON audit_records (at);
      CREATE INDEX audit_records_session ON audit_records (session);
      -- Signed statements "record seq has hash H"; copies also go to anchors outside the store.
      CREATE TABLE audit_checkpoints (
        seq       INTEGER PRIMARY KEY,
        hash      TEXT NOT NULL,
        at        INTEGER NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
      );
      -- How far each continuous export sink has delivered.
      CREATE TABLE audit_sink_cursors (
        name TEXT PRIMARY KEY,
        seq  INTEGER NOT NULL
      );
      -- Session recordings: ordered chunks of JSON-lines events.
      CREATE TABLE recording_chunks (
        session TEXT NOT NULL,
        chunk   INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        events  TEXT NOT NULL,
        PRIMARY KEY (session, chunk)
      ) WITHOUT ROWID;
      ALTER TABLE sessions ADD COLUMN stats TEXT;   -- JSON: operations, denied, rows, bytes
      CREATE INDEX sessions_ended_at ON sessions (ended_at);
    `,
  },
  {
    version: 3,
    name: "approvals and grants",
    sql: `
      CREATE TABLE approvals (
        id         TEXT PRIMARY KEY,
        state      TEXT NOT NULL,            -- pending | approved | denied | expired | cancelled
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        body       TEXT NOT NULL             -- JSON: requester, operation, rule, votes...
      );
      CREATE INDEX approvals_state ON approvals (state, expires_at);
      -- What an approval lets run: single-use and bound to an identity, a connection and the exact
      -- operation (kind once), or the operation's shape for a while (kind window).
      CREATE TABLE grants (
        id         TEXT PRIMARY KEY,
        approval   TEXT NOT NULL REFERENCES approvals (id),
        sub        TEXT NOT NULL,
        iss        TEXT NOT NULL,
        connection TEXT NOT NULL,
        kind       TEXT NOT NULL,            -- once | window
        key        TEXT NOT NULL,            -- once: hash of the exact operation; window: its fingerprint
        uses_left  INTEGER,                  -- once: 1, then 0; window: NULL
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX grants_lookup ON grants (sub, connection, key);
    `,
  },
  {
    version: 4,
    name: "containment",
    sql: `
      -- Identities (or tokens, groups, issuers) that may not act, checked at every session start and operation.
      CREATE TABLE revocations (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,            -- subject | jti | group | issuer
        value      TEXT NOT NULL,
        reason     TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,                  -- NULL: until lifted
        lifted_at  INTEGER,
        lifted_by  TEXT
      );
      CREATE TABLE freezes (
        connection TEXT PRIMARY KEY,
        reason     TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      -- Budget consumption per budget, scope key and minute: the sliding window survives restarts.
      CREATE TABLE budget_usage (
        budget     TEXT NOT NULL,
        key        TEXT NOT NULL,
        minute     INTEGER NOT NULL,         -- ms since the epoch / 60000
        rows       INTEGER NOT NULL DEFAULT 0,
        bytes      INTEGER NOT NULL DEFAULT 0,
        statements INTEGER NOT NULL DEFAULT 0,
        tables     TEXT NOT NULL DEFAULT '[]',  -- JSON: tables read in that minute
        PRIMARY KEY (budget, key, minute)
      ) WITHOUT ROWID;
      -- Where each identity has connected from, for new_client_address alerts.
      CREATE TABLE client_addresses (
        sub        TEXT NOT NULL,
        iss        TEXT NOT NULL,
        address    TEXT NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (sub, iss, address)
      ) WITHOUT ROWID;
    `,
  },
];
