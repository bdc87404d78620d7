/**
 * Composition root: config → store, identity, core → listeners. The only module that wires
 * things together; everything else receives what it needs.
 */
import type { DestinationStream } from "pino";
import { loadConfig, type LoadedConfig } from "./config/load.js";
import type { GatewayContext } from "./core/context.js";
import { createLogger, type Logger } from "./core/logger.js";
import { GatewayMetrics } from "./core/metrics.js";
import { loadOrCreateKey } from "./core/keys.js";
import { type DecisionEvent, SessionManager } from "./core/sessions.js";
import { loadServerTls, secureContextOf } from "./core/tls.js";
import { startHttpApi } from "./api/http-server.js";
import { DevIssuer } from "./identity/dev-issuer.js";
import type { TokenVerifier } from "./identity/principal.js";
import { createTokenVerifier } from "./identity/verifier.js";
import { type ListenAddress, PostgresListener } from "./protocols/postgres/adapter.js";
import { PolicyEngine } from "./policy/engine.js";
import { ClassificationCache } from "./policy/sql/cache.js";
import { loadSqlParser } from "./policy/sql/classify.js";
import { openStore } from "./store/open.js";
import type { Store } from "./store/store.js";

export interface GatewayOptions {
  /** Log destination (tests capture it); stderr by default. */
  logDestination?: DestinationStream;
  /**
   * Benchmarks only: relay without any message stage (no policy), to measure what the stages
   * cost. Not reachable from the config file or the CLI: a deployed gateway always enforces.
   */
  withoutStagesForBenchmark?: boolean;
}

export interface Gateway {
  config(): LoadedConfig;
  context: GatewayContext;
  store: Store;
  /** Actual bound addresses (port 0 in config → picked port). */
  addresses: { postgres?: ListenAddress; http?: ListenAddress };
  /** Re-reads the config file; a bad file is refused and the running config stays. */
  reload(): Promise<{ ok: true } | { ok: false; error: string }>;
  stop(): Promise<void>;
}

async function buildVerifier(config: LoadedConfig): Promise<TokenVerifier> {
  const devIssuer = config.identity.dev_issuer ? await DevIssuer.open(config.dataDir) : undefined;
  return createTokenVerifier(config.identity, devIssuer ? { devIssuer } : {});
}

export async function startGateway(initial: LoadedConfig, opts: GatewayOptions = {}): Promise<Gateway> {
  let config = initial;
  const logger: Logger = createLogger(config.gateway.log_level, opts.logDestination);
  const store = openStore(config.storeUrl);
  store.migrate();
  const tlsPair = await loadServerTls(config);
  let secureContext = secureContextOf(tlsPair);
  let verifier = await buildVerifier(config);
  const metrics = new GatewayMetrics();
  const sessions = new SessionManager(store);
  await loadSqlParser();
  let policy = new PolicyEngine(config.rules);
  const sqlCache = new ClassificationCache();
  sessions.on("decision", (e: DecisionEvent) => {
    const allowed = e.action === "allow";
    if (!allowed) metrics.decisions.inc({ action: e.action, rule: e.rule ?? "" });
    if (allowed && !logger.isLevelEnabled("debug")) return;
    const { operation: op } = e;
    const fields = { session: e.session, action: e.action, rule: e.rule, kinds: op.kinds, tables: op.tables, functions: op.functions, summary: op.summary };
    if (allowed) logger.debug(fields, "decision");
    else logger.info(fields, "decision");
  });

  const context: GatewayContext = {
    config: () => config,
    get verifier() { return verifier; },
    policy: () => policy,
    sqlCache,
    maskingKey: loadOrCreateKey(config.dataDir, "masking.key"),
    sessions,
    metrics,
    logger,
    serverTls: () => secureContext,
  };

  const addresses: Gateway["addresses"] = {};
  const listeners: PostgresListener[] = [];
  let http: Awaited<ReturnType<typeof startHttpApi>> | undefined;
  try {
    if (config.gateway.postgres) {
      const pg = opts.withoutStagesForBenchmark
        ? new PostgresListener(context, config.gateway.postgres, () => [])
        : new PostgresListener(context, config.gateway.postgres);
      addresses.postgres = await pg.start();
      listeners.push(pg);
    }
    if (config.gateway.http) {
      http = await startHttpApi(context, {
        ...config.gateway.http,
        ready: () => {
          const checks = { store: store.ping(), listeners: listeners.length > 0 || !config.gateway.postgres };
          return { ready: Object.values(checks).every(Boolean), checks };
        },
      });
      addresses.http = { host: config.gateway.http.host, port: http.port };
    }
  } catch (err) {
    for (const l of listeners) await l.stop();
    await http?.app.close();
    store.close();
    throw err;
  }
  logger.info({ addresses, store: config.storeUrl.split(":")[0], tls: tlsPair.generated ? "self-signed" : "configured" }, "portcullis started");

  return {
    config: () => config,
    context,
    store,
    addresses,
    async reload() {
      try {
        const next = loadConfig(config.source);
        const nextVerifier = await buildVerifier(next);
        const nextTls = secureContextOf(await loadServerTls(next));
        for (const key of ["postgres", "http"] as const) {
          if (JSON.stringify(next.gateway[key]) !== JSON.stringify(config.gateway[key])) {
            logger.warn({ listener: key }, "listener address changes take effect on restart");
          }
        }
        verifier.close?.();
        config = next;
        verifier = nextVerifier;
        policy = new PolicyEngine(next.rules);
        secureContext = nextTls;
        logger.info({ connections: next.connections.length, rules: next.rules.length }, "configuration reloaded");
        return { ok: true };
      } catch (err) {
        const error = (err as Error).message;
        logger.error({ error }, "configuration reload refused; the running configuration stays");
        return { ok: false, error };
      }
    },
    async stop() {
      sessions.killAll("gateway shutting down");
      for (const l of listeners) await l.stop();
      await http?.app.close();
      verifier.close?.();
      store.close();
    },
  };
}
