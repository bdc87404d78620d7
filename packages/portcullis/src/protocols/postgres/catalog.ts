/**
 * The gateway's own view of a target's catalog, over a side connection with the vaulted
 * credentials: what relation a RowDescription's table OID is, its column names, whether it is a
 * view and what the view is defined as. Cached per target for the gateway's life; the side
 * connection runs with an empty search_path so view definitions come back fully qualified.
 */
import pg from "pg";
import type { PostgresConnection } from "../../config/schema.js";
import { PortcullisError } from "../../errors.js";

export interface RelationInfo {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, v view, m materialized view, f foreign, ... */
  kind: string;
  /** attnum → attname of live columns. */
  columns: Map<number, string>;
}

/** Catalog facts are kept this long: a table or view redefined elsewhere is seen within it. */
const MAX_AGE_MS = 5_000;

/** A promise cache whose entries expire, and whose failures are not kept. */
class Expiring<K, V> {
  private readonly entries = new Map<K, { at: number; value: Promise<V> }>();
  clear(): void {
    this.entries.clear();
  }
  get(key: K, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.at < MAX_AGE_MS) return hit.value;
    const value = load();
    this.entries.set(key, { at: Date.now(), value });
    value.catch(() => this.entries.delete(key));
    return value;
  }
}

export class PgCatalog {
  private client?: Promise<pg.Client>;
  private readonly relations = new Expiring<number, RelationInfo | undefined>();
  private readonly byName = new Expiring<string, number[]>();
  private readonly viewDefs = new Expiring<number, string | undefined>();

  constructor(private readonly connection: PostgresConnection) {}

  invalidate(): void {
    this.relations.clear();
    this.byName.clear();
    this.viewDefs.clear();
  }

  private connect(): Promise<pg.Client> {
    this.client ??= (async () => {
      const t = this.connection.target;
      const base: pg.ClientConfig = {
        host: t.host, port: t.port, database: t.database,
        user: this.connection.credentials.username,
        password: this.connection.credentials.password ?? "",
        application_name: "portcullis-catalog",
        // Empty search_path: view definitions come back fully qualified. Timeouts: a session holding a
        // lock must not stall the lookups of every other session (they fail, and masking fails closed).
        options: "-c search_path= -c lock_timeout=2000 -c statement_timeout=5000",
        connectionTimeoutMillis: t.connect_timeout,
      };
      const ssl = t.tls === "disable" ? false
        : t.tls === "verify-full" ? { rejectUnauthorized: true, servername: t.server_name ?? t.host, ...(t.ca ? { ca: t.ca } : {}) }
        : { rejectUnauthorized: false };
      const attempt = async (cfg: pg.ClientConfig) => {
        const c = new pg.Client(cfg);
        c.on("error", () => { this.client = undefined; });
        await c.connect();
        return c;
      };
      try {
        return await attempt({ ...base, ssl });
      } catch (err) {
        if (t.tls !== "prefer") throw err;
        return attempt({ ...base, ssl: false });
      }
    })().catch((err: Error) => {
      this.client = undefined;
      throw new PortcullisError("E_UPSTREAM_UNAVAILABLE", `catalog connection to "${this.connection.name}" failed: ${err.message}`);
    });
    return this.client;
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    const c = await this.connect();
    return (await c.query<R>(sql, params)).rows;
  }

  relation(oid: number): Promise<RelationInfo | undefined> {
    return this.relations.get(oid, async () => {
      const rows = await this.query<{ kind: string; schema: string; name: string; attnum: number | null; attname: string | null }>(
        `select c.relkind::text as kind, n.nspname as schema, c.relname as name, a.attnum, a.attname
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
          where c.oid = $1 order by a.attnum`, [oid]);
      if (rows.length === 0) return undefined;
      const columns = new Map<number, string>();
      for (const r of rows) if (r.attnum !== null && r.attname !== null) columns.set(r.attnum, r.attname);
      return { oid, schema: rows[0]!.schema, name: rows[0]!.name, kind: rows[0]!.kind, columns };
    });
  }

  /** OIDs of relations with that name (in that schema, or in any schema when none is given). */
  resolve(schema: string | undefined, name: string): Promise<number[]> {
    return this.byName.get(`${schema ?? "*"}.${name}`, async () =>
      (await this.query<{ oid: number }>(
        `select c.oid::int as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relname = $1 and ($2::text is null or n.nspname = $2) and c.relkind in ('r','p','v','m','f')`,
        [name, schema ?? null],
      )).map((r) => r.oid));
  }

  viewDefinition(oid: number): Promise<string | undefined> {
    return this.viewDefs.get(oid, async () => (await this.query<{ def: string | null }>("select pg_get_viewdef($1::oid) as def", [oid]))[0]?.def ?? undefined);
  }

  async close(): Promise<void> {
    const c = await this.client?.catch(() => undefined);
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
