/**
 * `portcullisPool`: a node-postgres pool whose connections go through the gateway. The password is
 * the current token (fetched per new connection, so refreshed tokens are used as they come), and
 * each LangGraph run context gets connections of its own, opened with that context as startup
 * parameters (`-c portcullis.run_id=...`): every statement's audit record names the graph, thread,
 * run and node. Connections are recycled well within a token's life, because the gateway ends a
 * session when its token expires.
 */
import pg from "pg";
import { type RunContext, contextKey, currentRunContext } from "./context.js";
import { fromPgError } from "./errors.js";
import type { TokenSource } from "./tokens.js";

export interface PortcullisPoolOptions {
  /** The gateway's PostgreSQL listener. */
  host: string;
  port: number;
  /** The gateway connection's name (what a client sends as the database name). */
  connection: string;
  tokens: TokenSource;
  /** TLS to the gateway (required by the gateway except on loopback with the dev issuer). */
  ssl?: pg.ClientConfig["ssl"];
  /** Names the graph when LangGraph's config does not. */
  graphId?: string;
  /** Connections per run context (default 2). */
  max?: number;
  /** A connection is retired after this long (default 60 s; keep it below the token lifetime). */
  maxLifetimeSeconds?: number;
  /**
   * Defer mode (default true): a statement that needs approval fails at once with PX001 and its
   * approval id, which `withApproval` turns into an interrupt. false: it waits (hold mode).
   */
  defer?: boolean;
}

/** `-c name=value` pairs for the startup `options`, with the escaping libpq uses. */
function optionsFor(ctx: RunContext, defer: boolean): string | undefined {
  const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/ /g, "\\ ");
  const parts = Object.entries(ctx).filter(([, v]) => v).map(([k, v]) => `-c portcullis.${k}=${esc(String(v).slice(0, 256))}`);
  if (defer) parts.push("-c portcullis.approval=defer");
  return parts.length ? parts.join(" ") : undefined;
}

export class PortcullisPool {
  private readonly pools = new Map<string, pg.Pool>();

  constructor(private readonly o: PortcullisPoolOptions) {}

  /** Runs a statement in the current run context; gateway refusals become typed errors. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.poolFor(currentRunContext(this.o.graphId)).query<R>(text, values);
    } catch (err) {
      throw fromPgError(err);
    }
  }

  async end(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end()));
  }

  private poolFor(ctx: RunContext): pg.Pool {
    const key = contextKey(ctx);
    let pool = this.pools.get(key);
    if (!pool) {
      const options = optionsFor(ctx, this.o.defer ?? true);
      pool = new pg.Pool({
        host: this.o.host,
        port: this.o.port,
        database: this.o.connection,
        user: "agent",
        password: () => this.o.tokens.token(ctx),
        ...(options ? { options } : {}),
        ...(this.o.ssl !== undefined ? { ssl: this.o.ssl } : {}),
        max: this.o.max ?? 2,
        idleTimeoutMillis: 10_000,
        maxLifetimeSeconds: this.o.maxLifetimeSeconds ?? 60,
      });
      // A connection the gateway ends (revocation, expiry) must not crash the process.
      pool.on("error", () => {});
      this.pools.set(key, pool);
      // Contexts come and go with runs: keep the most recent few.
      if (this.pools.size > 32) {
        const [oldKey, old] = this.pools.entries().next().value!;
        this.pools.delete(oldKey);
        void old.end();
      }
    }
    return pool;
  }
}

export function portcullisPool(options: PortcullisPoolOptions): PortcullisPool {
  return new PortcullisPool(options);
}
