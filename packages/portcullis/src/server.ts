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
import { FileAnchor, WebhookAnchor } from "./audit/anchors.js";
import type { AuditEntry } from "./audit/chain.js";
import { CheckpointSigner } from "./audit/signing.js";
import { type SinkConfig, SinkRunner, createSink } from "./audit/sinks/index.js";
import type { AuditSinkConfig } from "./config/schema.js";
import { AlertBus } from "./core/alerts.js";
import { ApprovalGate } from "./core/approval-gate.js";
import { BudgetBook } from "./core/budgets.js";
import { Containment } from "./core/containment.js";
import { Detections } from "./core/detections.js";
import { LoginRefusals } from "./core/login-refusals.js";
import { RevocationList } from "./identity/revocations.js";
import type { Approval } from "./approvals/approval.js";
import { ApprovalService } from "./approvals/service.js";
import { startNotifiers } from "./approvals/notifiers/index.js";
import { DETECTOR_NAMES } from "./config/schema.js";
import { compileTextMasker } from "./masking/text-masker.js";
import { type CheckpointAnchor, Journal } from "./core/journal.js";
import { DevIssuer } from "./identity/dev-issuer.js";
import type { TokenVerifier } from "./identity/principal.js";
import { createTokenVerifier } from "./identity/verifier.js";
import { type ListenAddress, PostgresListener } from "./protocols/postgres/adapter.js";
import { HttpTargets } from "./protocols/http/adapter.js";
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
  /** Benchmarks only: policy and masking on, but audit and recording write nothing. */
  withoutAuditForBenchmark?: boolean;
}

/** Why a session that was live when the process died ended. */
export const ABANDONED_REASON = "abnormal: the gateway stopped without closing the session";
const HOUR = 3_600_000;

export interface Gateway {
  config(): LoadedConfig;
  context: GatewayContext;
  store: Store;
  approvals: ApprovalService;
  containment: Containment;
  journal: Journal;
  alerts: AlertBus;
  /** Actual bound addresses (port 0 in config → picked port). */
  addresses: { postgres?: ListenAddress; http?: ListenAddress };
  /** Re-reads the config file; a bad file is refused and the running config stays. */
  reload(): Promise<{ ok: true } | { ok: false; error: string }>;
  stop(): Promise<void>;
}

function toSinkConfig(s: AuditSinkConfig): SinkConfig {
  const name = s.name !== undefined ? { name: s.name } : {};
  if (s.file) return { ...name, file: s.file };
  if (s.webhook) return { ...name, webhook: s.webhook };
  return { ...name, syslog: s.syslog! };
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
  if (config.audit.max_store_size !== undefined) store.setSizeLimit(config.audit.max_store_size);
  // One gateway process owns a SQLite store: sessions it finds open were cut off by a crash.
  const abandoned = store.endAbandonedSessions(new Date(), ABANDONED_REASON);
  const anchors: CheckpointAnchor[] = [];
  if (config.audit.anchors.file) anchors.push(new FileAnchor(config.audit.anchors.file));
  if (config.audit.anchors.webhook) anchors.push(new WebhookAnchor(config.audit.anchors.webhook));
  const sinks: SinkRunner[] = config.audit.sinks.map((cfg, i) => {
    const sink = createSink(toSinkConfig(cfg), i);
    const lag = metrics.auditSinkLag.labels(sink.name);
    return new SinkRunner(store, sink, { logger, onLag: (n) => lag.set(n) });
  });
  const journal = new Journal({
    store,
    signer: CheckpointSigner.open(config.dataDir),
    checkpointEvery: config.audit.checkpoint_every,
    checkpointIntervalMs: config.audit.checkpoint_interval,
    anchors,
    logger,
    discardForBenchmark: opts.withoutAuditForBenchmark === true,
    onAvailability: (ok, detail) => {
      metrics.auditAvailable.set(ok ? 1 : 0);
      if (!ok) alerts.raise("audit_unavailable", { error: detail });
    },
    onCommitted: (seq) => {
      metrics.auditRecords.set(seq);
      for (const s of sinks) s.notify();
    },
  });
  const audit = (entry: AuditEntry) => void journal.append(entry);
  const alerts = new AlertBus({ logger, metrics, channels: () => config.alerts, audit });
  audit({ type: "gateway_start", data: { abandoned_sessions: abandoned.length } });
  for (const id of abandoned) audit({ type: "session_close", session: id, data: { reason: ABANDONED_REASON } });
  if (abandoned.length > 0) logger.warn({ sessions: abandoned.length }, "sessions left open by the previous run marked as ended abnormally");
  for (const s of sinks) s.start();
  const pruneRecordings = () => {
    const retention = config.recording.retention;
    if (retention === undefined) return;
    try {
      const n = store.pruneRecordings(new Date(Date.now() - retention));
      if (n > 0) logger.info({ sessions: n }, "recordings past retention deleted");
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "recording retention could not run");
    }
  };
  pruneRecordings();
  const retentionTimer = setInterval(pruneRecordings, HOUR);
  retentionTimer.unref();
  const budgets = new BudgetBook(store, () => config.budgets, logger);
  const revocations = new RevocationList(store);
  let containment: Containment | undefined;
  const sessions = new SessionManager({
    journal,
    recording: () => (config.recording.enabled
      ? { maxResultBytes: config.recording.max_result_bytes, maxSessionBytes: config.recording.max_session_bytes }
      : undefined),
    meter: (p, connection) => budgets.meterFor(p, connection),
    guard: { check: (session, tables) => containment!.check(session, tables) },
    expiryGrace: () => config.identity.expiry_grace,
  });
  containment = new Containment({ store, sessions, revocations, alerts, audit, logger });
  const detections = new Detections(store, alerts, () => config, logger);
  const loginRefusals = new LoginRefusals(audit);
  await loadSqlParser();
  let policy = new PolicyEngine(config.rules);
  const sqlCache = new ClassificationCache();
  sessions.on("decision", (e: DecisionEvent) => {
    const allowed = e.action === "allow";
    if (!allowed) metrics.decisions.inc({ action: e.action, rule: e.rule ?? "" });
    if (e.action === "deny") alerts.raise("deny", { session: e.session, rule: e.rule, kinds: e.operation.kinds, tables: e.operation.tables }, `${e.rule ?? ""} ${e.session}`);
    if (allowed && !logger.isLevelEnabled("debug")) return;
    const { operation: op } = e;
    const fields = { session: e.session, action: e.action, rule: e.rule, kinds: op.kinds, tables: op.tables, functions: op.functions, summary: op.summary };
    if (allowed) logger.debug(fields, "decision");
    else logger.info(fields, "decision");
  });

  const maskingKey = loadOrCreateKey(config.dataDir, "masking.key");
  const approvalService = new ApprovalService({
    store, audit, logger, admins: () => config.identity.admins,
    maxPendingPerIdentity: () => config.approvals.max_pending_per_identity,
    standing: { revoked: (p) => containment!.isRevoked(p), frozen: (c) => containment!.isFrozen(c) },
  });
  const heldLost = approvalService.recover();
  if (heldLost > 0) logger.warn({ approvals: heldLost }, "approvals held by the previous run cancelled (their connections are gone)");
  const addresses: Gateway["addresses"] = {};
  approvalService.on("requested", (a: Approval) => alerts.raise("approval_requested", { approval: a.id, rule: a.rule, sub: a.requester.sub, connection: a.connection, mode: a.mode }, a.id));
  approvalService.on("decided", (a: Approval) => alerts.raise("approval_decided", { approval: a.id, state: a.state, rule: a.rule, sub: a.requester.sub, connection: a.connection }, a.id));
  startNotifiers(approvalService, () => config, logger, () => {
    if (config.approvals.public_url) return config.approvals.public_url;
    const http = addresses.http;
    return http ? `http://${http.host.includes(":") ? `[${http.host}]` : http.host}:${http.port}` : "http://localhost";
  });
  // What an approver is shown: the statement with every detector's matches redacted.
  const approverView = compileTextMasker(DETECTOR_NAMES, "redact", maskingKey);
  const approvals = new ApprovalGate(approvalService, () => config.rules, (text) => approverView.mask(text) ?? text);

  const context: GatewayContext = {
    config: () => config,
    get verifier() { return verifier; },
    policy: () => policy,
    sqlCache,
    maskingKey,
    approvals,
    containment,
    alerts,
    loginRefusals,
    detections,
    sessions,
    metrics,
    logger,
    serverTls: () => secureContext,
  };

  const listeners: PostgresListener[] = [];
  const httpTargets = new HttpTargets(context);
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
        approvals: approvalService,
        store,
        httpTargets,
        ready: () => {
          const checks = { store: store.ping(), audit: journal.isAvailable, listeners: listeners.length > 0 || !config.gateway.postgres };
          return { ready: Object.values(checks).every(Boolean), checks };
        },
      });
      addresses.http = { host: config.gateway.http.host, port: http.port };
    }
  } catch (err) {
    for (const l of listeners) await l.stop();
    await http?.app.close();
    clearInterval(retentionTimer);
    approvalService.close();
    budgets.close();
    journal.close();
    await Promise.all(sinks.map((s) => s.stop()));
    store.close();
    throw err;
  }
  logger.info({ addresses, store: config.storeUrl.split(":")[0], tls: tlsPair.generated ? "self-signed" : "configured" }, "portcullis started");

  return {
    config: () => config,
    context,
    store,
    approvals: approvalService,
    containment,
    journal,
    alerts,
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
        if (next.audit.max_store_size !== config.audit.max_store_size) store.setSizeLimit(next.audit.max_store_size);
        config = next;
        verifier = nextVerifier;
        policy = new PolicyEngine(next.rules);
        secureContext = nextTls;
        logger.info({ connections: next.connections.length, rules: next.rules.length }, "configuration reloaded");
        audit({ type: "config_reload", data: { ok: true, connections: next.connections.length, rules: next.rules.length } });
        return { ok: true };
      } catch (err) {
        const error = (err as Error).message;
        logger.error({ error }, "configuration reload refused; the running configuration stays");
        audit({ type: "config_reload", data: { ok: false, error } });
        return { ok: false, error };
      }
    },
    async stop() {
      sessions.killAll("gateway shutting down");
      for (const l of listeners) await l.stop();
      await http?.app.close();
      await httpTargets.close();
      verifier.close?.();
      clearInterval(retentionTimer);
      approvalService.close();
      budgets.close();
      loginRefusals.close();
      audit({ type: "gateway_stop", data: {} });
      journal.close();
      await Promise.all(sinks.map((s) => s.stop()));
      store.close();
    },
  };
}
