/**
 * The schema of portcullis.yaml (SPEC §2). Every object is strict: an unknown key is an error,
 * because a typo in a security config (`acess:`) must not silently widen or drop a control.
 * Sections the gateway does not enforce yet are refused by the same mechanism rather than
 * accepted and ignored.
 */
import { z } from "zod";
import { BODY_OPERATORS } from "../policy/http.js";
import { STATEMENT_KINDS } from "../policy/sql/kinds.js";
import { parseAddress, parseDuration, parseSize } from "./units.js";

const address = z.string().refine((s) => parseAddress(s) !== undefined, {
  message: 'expected "host:port"',
}).transform((s) => parseAddress(s)!);

const duration = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: 'expected a duration such as "90s", "15m" or "1h"',
}).transform((s) => parseDuration(s)!);

const size = z.union([
  z.number().int().positive(),
  z.string().refine((s) => parseSize(s) !== undefined, { message: 'expected a size such as "64MB"' })
    .transform((s) => parseSize(s)!),
]);

/** A port, also given as a numeric string (what a `${env:PORT}` reference yields). */
const port = z.preprocess(
  (v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v),
  z.number().int().min(1).max(65535),
);

const groupList = z.array(z.string().min(1));

const tlsFiles = z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict();

const gateway = z.object({
  postgres: address.optional(),
  mysql: address.optional(),
  ssh: address.optional(),
  http: address.optional(),
  tls: tlsFiles.optional(),
  data_dir: z.string().min(1).default("./.portcullis"),
  /**
   * Largest single protocol message accepted from either side; larger ones end the session.
   * 32 MB holds any statement text, a Bind with multi-megabyte parameters, a COPY row (clients send
   * COPY data in chunks, the target one row per message) and a 15 MB bytea read back as hex text
   * (twice its size); it bounds what one partial message pins (the buffer budget bounds the sum).
   */
  max_message_size: size.default(32 * 1024 * 1024),
  /** One deadline over everything before the agent has authenticated, TLS handshake included (PostgreSQL's authentication_timeout). */
  authentication_timeout: duration.refine((ms) => ms > 0, { message: "expected a positive duration" }).default(15_000),
  /** Agent connections open at once, authenticated or not, per listener. */
  max_connections: z.number().int().positive().default(1000),
  /** Connections that have not yet authenticated, in total and from one source (an IPv4 address or an IPv6 /64). */
  max_unauthenticated: z.number().int().positive().default(256),
  max_unauthenticated_per_source: z.number().int().positive().default(32),
  /** HTTP listener: how long a client may take to send one whole request, headers and body (408 after). */
  request_timeout: duration.refine((ms) => ms > 0, { message: "expected a positive duration" }).default(300_000),
  /** Bearer token a Prometheus scraper presents at /metrics (an admin's token works too); usually "${env:...}". */
  metrics_token: z.string().min(16, { message: "expected at least 16 characters" }).optional(),
  /** Bytes all sessions together may hold buffered (partial messages, frames queued behind an approval, handshakes). */
  max_buffered_bytes: size.default(256 * 1024 * 1024),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
}).strict().refine((g) => g.max_buffered_bytes >= g.max_message_size, {
  message: "max_buffered_bytes must be at least max_message_size (one whole message must fit)",
  path: ["max_buffered_bytes"],
});

const issuer = z.object({
  issuer: z.url(),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  groups_claim: z.string().min(1).default("groups"),
  algorithms: z.array(z.enum([
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519",
  ])).min(1).default(["RS256", "ES256", "EdDSA"]),
  max_token_age: duration.optional(),
  /** Skips OIDC discovery when set; otherwise read from /.well-known/openid-configuration. */
  jwks_uri: z.url().optional(),
  clock_tolerance: duration.default(5_000),
}).strict();

const identity = z.object({
  issuers: z.array(issuer).default([]),
  dev_issuer: z.boolean().default(false),
  admins: groupList.default([]),
  /** When a token expires while a statement is running, how long that statement may still finish. */
  expiry_grace: duration.default(0),
}).strict();

export const TARGET_TLS_MODES = ["disable", "prefer", "require", "verify-full"] as const;

const postgresConnection = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
    message: "expected lowercase letters, digits, '-' or '_' (at most 63)",
  }),
  type: z.literal("postgres"),
  target: z.object({
    host: z.string().min(1),
    port: port.default(5432),
    database: z.string().min(1),
    tls: z.enum(TARGET_TLS_MODES).default("prefer"),
    /** PEM of the CA that signs the target's certificate (for verify-full); usually "${file:...}". */
    ca: z.string().optional(),
    /** Name checked against the certificate; defaults to host. */
    server_name: z.string().optional(),
    connect_timeout: duration.default(10_000),
  }).strict(),
  credentials: z.object({
    username: z.string().min(1),
    password: z.string().optional(),
  }).strict(),
  access: groupList.min(1, { message: "expected at least one group (nobody could use this connection)" }),
}).strict();

const httpConnection = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
    message: "expected lowercase letters, digits, '-' or '_' (at most 63)",
  }),
  type: z.literal("http"),
  target: z.object({
    /** Base URL; requests to /c/<name>/x go to <url>/x. */
    url: z.url().refine((u) => /^https?:/.test(u), { message: "expected an http:// or https:// URL" }),
    /** PEM of the CA that signs the target's certificate (default: the system's). */
    ca: z.string().optional(),
    /** Client certificate and key (PEM) when the target wants mutual TLS. */
    cert: z.string().optional(),
    key: z.string().optional(),
    connect_timeout: duration.default(10_000),
    /** How long the target may take to start answering. */
    timeout: duration.default(60_000),
  }).strict(),
  /** How the gateway authenticates to the target; the agent never sees any of it. */
  credentials: z.object({
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string()).optional(),
    basic: z.object({ username: z.string(), password: z.string() }).strict().optional(),
    query: z.record(z.string().min(1), z.string()).optional(),
    oauth2: z.object({
      token_url: z.url(),
      client_id: z.string().min(1),
      client_secret: z.string().min(1),
      scope: z.string().optional(),
      audience: z.string().optional(),
    }).strict().optional(),
  }).strict().default({}),
  access: groupList.min(1, { message: "expected at least one group (nobody could use this connection)" }),
  /** Largest request body accepted (it is judged, masked and recorded whole). */
  max_request_body: size.default(10 * 1024 * 1024),
  /** Largest response body masked; a larger one that needs masking is refused (502), never passed unmasked. */
  max_masked_body: size.default(64 * 1024 * 1024),
  /** Responses that are neither JSON nor text, when masking applies: pass them, or refuse them (502). */
  binary_responses: z.enum(["pass", "refuse"]).default("pass"),
  /** A Streamable HTTP MCP server: JSON-RPC tools/call requests are judged by tool name (`when.mcp`). */
  mcp: z.boolean().default(false),
  /** Path rules match case-insensitively (as Express, ASP.NET and IIS route) unless the target routes by case. */
  paths_case_sensitive: z.boolean().default(false),
}).strict();

const connection = z.discriminatedUnion("type", [postgresConnection, httpConnection]);

const patternList = z.array(z.string().min(1)).min(1);

const sqlCondition = z.object({
  statements: z.array(z.enum(STATEMENT_KINDS)).min(1).optional(),
  tables: patternList.optional(),
  functions: patternList.optional(),
  no_where: z.literal(true).optional(),
  program: z.literal(true).optional(),
}).strict().refine((c) => Object.keys(c).length > 0, { message: "expected at least one condition" });

/** What is wrong with a `body_json` value (a literal, or an operator object of policy/http.ts). */
function bodyValueProblem(value: unknown): string | undefined {
  if (value === undefined) return "expected a value";
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  const ops = keys.filter((k) => (BODY_OPERATORS as readonly string[]).includes(k));
  if (ops.length === 0) return undefined;
  if (ops.length !== keys.length) return `expected only operators (${BODY_OPERATORS.join(", ")}) or none; to match an object with such keys, use { eq: {...} }`;
  const v = value as Record<string, unknown>;
  for (const op of ["gt", "gte", "lt", "lte"]) {
    if (op in v && (typeof v[op] !== "number" || !Number.isFinite(v[op]))) return `${op}: expected a number`;
  }
  if ("in" in v && (!Array.isArray(v.in) || v.in.length === 0)) return "in: expected a non-empty list";
  return undefined;
}

const httpCondition = z.object({
  methods: z.array(z.string().regex(/^[A-Za-z]+$/).transform((m) => m.toUpperCase())).min(1).optional(),
  paths: patternList.optional(),
  /** Header name → glob its value must match. */
  headers: z.record(z.string().min(1), z.string()).optional(),
  /**
   * JSON body field (dotted path, `$.` optional, array indexes as numbers) → a literal it must equal
   * (typed), or an object of operators: `eq`, `ne`, `in` (a list), `gt`, `gte`, `lt`, `lte` (numbers).
   */
  body_json: z.record(z.string(), z.unknown()).superRefine((fields, ctx) => {
    for (const [path, value] of Object.entries(fields)) {
      if (!/^(\$\.)?[^.\s]+(\.[^.\s]+)*$/.test(path)) ctx.addIssue({ code: "custom", path: [path], message: 'expected a dotted path such as "$.refund.amount"' });
      const problem = bodyValueProblem(value);
      if (problem) ctx.addIssue({ code: "custom", path: [path], message: problem });
    }
  }).optional(),
}).strict().refine((c) => Object.keys(c).length > 0, { message: "expected at least one condition" });

const sshCondition = z.object({ commands: patternList }).strict();

/** MCP (HTTP connections with `mcp: true`): globs over the tool names of JSON-RPC `tools/call`. */
const mcpCondition = z.object({ tools: patternList }).strict();

const rule = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, { message: "expected letters, digits, '.', '-' or '_' (at most 100)" }),
  connections: z.array(z.string().min(1)).min(1).optional(),
  groups: groupList.min(1).optional(),
  when: z.object({ sql: sqlCondition.optional(), http: httpCondition.optional(), mcp: mcpCondition.optional(), ssh: sshCondition.optional() }).strict()
    .refine((w) => Object.keys(w).length === 1, { message: "expected exactly one of: sql, http, mcp, ssh" }),
  action: z.enum(["allow", "deny", "approve"]),
  message: z.string().max(500).optional(),
  /** approve: groups whose members may decide (the requester never can). */
  approvers: groupList.min(1).optional(),
  /** approve: distinct approvers needed. */
  min_approvals: z.number().int().min(1).max(20).optional(),
  /** approve, hold mode: how long the operation waits for a decision. */
  hold_timeout: duration.optional(),
  /** approve: how long a pending approval (and an unused single-use grant) lives. */
  expires_after: duration.optional(),
  /** approve: "once" (default: the exact operation, once) or "window 30m" (the same statement shape, for that long). */
  grant: z.string().regex(/^(once|window\s+\S+)$/, { message: 'expected "once" or "window <duration>", e.g. "window 30m"' })
    .refine((g) => g === "once" || parseDuration(g.replace(/^window\s+/, "")) !== undefined, { message: 'expected "once" or "window <duration>", e.g. "window 30m"' })
    .transform((g): Grant => (g === "once" ? { kind: "once" } : { kind: "window", ms: parseDuration(g.replace(/^window\s+/, ""))! }))
    .optional(),
}).strict();

export type Grant = { kind: "once" } | { kind: "window"; ms: number };

/** An approve rule's settings with SPEC §2's defaults filled in. */
export interface ApprovalSettings {
  name: string;
  approvers: string[];
  min_approvals: number;
  hold_timeout: number;
  expires_after: number;
  grant: Grant;
}

export function approvalSettings(r: RuleConfig): ApprovalSettings {
  return {
    name: r.name,
    approvers: r.approvers ?? [],
    min_approvals: r.min_approvals ?? 1,
    hold_timeout: r.hold_timeout ?? 60_000,
    expires_after: r.expires_after ?? 3_600_000,
    grant: r.grant ?? { kind: "once" },
  };
}

export const DETECTOR_NAMES = [
  "email", "credit_card", "us_ssn", "iban", "phone", "ipv4", "ipv6", "jwt", "aws_key", "private_key", "api_token",
] as const;

export const MASKING_STRATEGIES = ["redact", "partial", "hash", "null"] as const;

const maskingRule = z.object({
  connections: z.array(z.string().min(1)).min(1).optional(),
  /** `table.column` or `schema.table.column`, globs allowed (`payments.card_*`). */
  columns: z.array(z.string().regex(/^[^.\s]+(\.[^.\s]+){1,2}$/, { message: 'expected "table.column" or "schema.table.column"' })).min(1).optional(),
  detectors: z.array(z.enum(DETECTOR_NAMES)).min(1).optional(),
  /** JSON key names (globs, case-insensitive) whose values are masked in HTTP bodies: `ssn`, `*_token`. */
  keys: z.array(z.string().min(1)).min(1).optional(),
  strategy: z.enum(MASKING_STRATEGIES).default("redact"),
  /** A masked column of a type that cannot hold the mask (integer, date, binary...): NULL it, or end the session. */
  non_text: z.enum(["null", "refuse"]).default("null"),
}).strict().refine((m) => m.columns !== undefined || m.detectors !== undefined || m.keys !== undefined, { message: "expected columns, keys, detectors, or a combination" });

/** An HTTPS (or loopback HTTP) endpoint that receives HMAC-signed JSON. */
const webhookTarget = z.object({
  url: z.url(),
  /** HMAC-SHA256 key of the X-Portcullis-Signature header; usually "${env:...}". */
  secret: z.string().min(1).optional(),
}).strict();

const auditSink = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/).optional(),
  file: z.object({ path: z.string().min(1) }).strict().optional(),
  webhook: webhookTarget.optional(),
  syslog: z.object({
    host: z.string().min(1),
    port: port.default(6514),
    tls: z.boolean().default(false),
    /** PEM of the CA that signs the collector's certificate (TLS); usually "${file:...}". */
    ca: z.string().optional(),
    app_name: z.string().regex(/^[!-~]{1,48}$/).default("portcullis"),
    /** RFC 5424 facility number; 10 = authpriv. */
    facility: z.number().int().min(0).max(23).default(10),
  }).strict().optional(),
}).strict().refine((s) => [s.file, s.webhook, s.syslog].filter(Boolean).length === 1, { message: "expected exactly one of: file, webhook, syslog" });

const slackNotifier = z.object({
  /** Incoming-webhook URL the request message is posted to. */
  webhook_url: z.url(),
  /** Signing secret of the Slack app whose interactivity URL is <gateway http>/api/slack/interactivity. */
  signing_secret: z.string().min(1),
  /** Slack user id → the identity that decides when they press a button. */
  users: z.record(z.string().regex(/^[UW][A-Z0-9]+$/), z.object({ sub: z.string().min(1), groups: groupList.default([]) }).strict()).default({}),
}).strict();

const emailNotifier = z.object({
  smtp: z.object({
    host: z.string().min(1),
    port: port.default(587),
    /** true: TLS from the first byte (port 465); false: STARTTLS when the server offers it. */
    secure: z.boolean().default(false),
    /** Refuse to send without STARTTLS (the links are one-time secrets). Turn off only for a local relay. */
    require_tls: z.boolean().default(true),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
  }).strict(),
  from: z.string().min(3),
  /** Each recipient gets their own one-time links. */
  to: z.array(z.string().min(3)).min(1),
}).strict();

const approvals = z.object({
  /** Base URL of the gateway's HTTP listener as approvers reach it (e-mail links); default: http://<gateway.http>. */
  public_url: z.url().optional(),
  /**
   * Approvals one identity may have pending at once (held and deferred). A held request keeps its
   * body in memory, and a flood of requests would bury the approvals that matter: past the cap a
   * request that needs approval is refused (HTTP 429, SQLSTATE PX004) until some are decided.
   */
  max_pending_per_identity: z.number().int().positive().default(20),
  /** Where approval requests are sent; the CLI and the admin API always work. */
  notify: z.array(z.object({
    webhook: webhookTarget.optional(),
    slack: slackNotifier.optional(),
    email: emailNotifier.optional(),
  }).strict().refine((n) => [n.webhook, n.slack, n.email].filter(Boolean).length === 1, { message: "expected exactly one of: webhook, slack, email" })).default([]),
}).strict();

export const ALERT_KINDS = [
  "deny", "approval_requested", "approval_decided", "budget_exceeded", "revoked_identity_used",
  "session_killed", "audit_unavailable", "bulk_read", "new_client_address",
] as const;

const budget = z.object({
  /** Keys the budget's saved usage; set it so usage survives edits of the list. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/).optional(),
  /** Who it applies to (all given must hold; none: everyone). */
  groups: groupList.min(1).optional(),
  subjects: z.array(z.string().min(1)).min(1).optional(),
  connections: z.array(z.string().min(1)).min(1).optional(),
  /** Whose consumption is counted together: each identity (default), each of the listed groups, or each connection. */
  per: z.enum(["identity", "group", "connection"]).default("identity"),
  rows_per_hour: z.number().int().positive().optional(),
  bytes_per_hour: size.optional(),
  statements_per_hour: z.number().int().positive().optional(),
  /** Distinct tables read. */
  tables_per_hour: z.number().int().positive().optional(),
  action: z.literal("deny").default("deny"),
}).strict().refine((b) => [b.rows_per_hour, b.bytes_per_hour, b.statements_per_hour, b.tables_per_hour].some((x) => x !== undefined), {
  message: "expected at least one of rows_per_hour, bytes_per_hour, statements_per_hour, tables_per_hour",
}).refine((b) => b.per !== "group" || b.groups !== undefined, { message: "per: group needs groups" });

const alertChannel = z.object({
  on: z.array(z.enum(ALERT_KINDS)).min(1),
  webhook: webhookTarget.optional(),
  slack: z.object({ webhook_url: z.url(), signing_secret: z.string().optional() }).strict().optional(),
  email: emailNotifier.optional(),
  /** The same alert (kind and subject) is sent at most once per this window. */
  dedupe: duration.default(300_000),
}).strict().refine((a) => [a.webhook, a.slack, a.email].filter(Boolean).length === 1, { message: "expected exactly one of: webhook, slack, email" });

const detections = z.object({
  /** bulk_read: a single result with more rows than this. */
  bulk_read_rows: z.number().int().positive().default(10_000),
  /** new_client_address: an identity seen from an address it has not used for this long. */
  new_client_address_after: duration.default(30 * 86_400_000),
}).strict();

const audit = z.object({
  /** A signed checkpoint after this many records... */
  checkpoint_every: z.number().int().positive().default(1000),
  /** ...or after this long, when anything was written since the last one. */
  checkpoint_interval: duration.default(60_000),
  /** Copies of every checkpoint outside the store: what makes a truncated tail detectable. */
  anchors: z.object({ file: z.string().min(1).optional(), webhook: webhookTarget.optional() }).strict().default({}),
  /** Continuous export; a slow or dead sink falls behind and catches up, it never blocks traffic. */
  sinks: z.array(auditSink).default([]),
  /** Cap on the store file: past it writes fail and traffic stops (fail closed) instead of filling the disk. */
  max_store_size: size.optional(),
}).strict();

const recording = z.object({
  enabled: z.boolean().default(true),
  /** Row bytes kept per operation; past it only counts and a hash. */
  max_result_bytes: size.default(1024 * 1024),
  /** Row bytes kept per session; past it only counts and hashes. */
  max_session_bytes: size.default(64 * 1024 * 1024),
  /** Recordings of sessions that ended longer ago are deleted (audit records stay). Absent: kept. */
  retention: duration.optional(),
}).strict();

export const configSchema = z.object({
  gateway: gateway,
  store: z.string().regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, {
    message: 'expected "sqlite:PATH" or "postgres://..."',
  }).optional(),
  identity: identity.default({ issuers: [], dev_issuer: false, admins: [], expiry_grace: 0 }),
  connections: z.array(connection).default([]),
  rules: z.array(rule).default([]),
  masking: z.array(maskingRule).default([]),
  approvals: approvals.default({ max_pending_per_identity: 20, notify: [] }),
  budgets: z.array(budget).default([]),
  alerts: z.array(alertChannel).default([]),
  detections: detections.default({ bulk_read_rows: 10_000, new_client_address_after: 30 * 86_400_000 }),
  audit: audit.default({ checkpoint_every: 1000, checkpoint_interval: 60_000, anchors: {}, sinks: [] }),
  recording: recording.default({ enabled: true, max_result_bytes: 1024 * 1024, max_session_bytes: 64 * 1024 * 1024 }),
}).strict().superRefine((cfg, ctx) => {
  const seen = new Map<string, number>();
  cfg.connections.forEach((c, i) => {
    const first = seen.get(c.name);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: ["connections", i, "name"], message: `duplicate connection name "${c.name}" (first at connections[${first}])` });
    } else seen.set(c.name, i);
  });
  const ruleNames = new Map<string, number>();
  const connectionNames = new Set(cfg.connections.map((c) => c.name));
  cfg.rules.forEach((r, i) => {
    const first = ruleNames.get(r.name);
    if (first !== undefined) ctx.addIssue({ code: "custom", path: ["rules", i, "name"], message: `duplicate rule name "${r.name}" (first at rules[${first}])` });
    else ruleNames.set(r.name, i);
    r.connections?.forEach((c, j) => {
      // A misspelt connection would make the rule silently apply to nothing.
      if (!connectionNames.has(c)) ctx.addIssue({ code: "custom", path: ["rules", i, "connections", j], message: `no connection named "${c}"` });
    });
    if (r.action === "approve" && !r.approvers) {
      ctx.addIssue({ code: "custom", path: ["rules", i, "approvers"], message: "expected the groups that may approve (action: approve)" });
    }
    if (r.action !== "approve" && r.approvers) {
      ctx.addIssue({ code: "custom", path: ["rules", i, "approvers"], message: "only rules with action: approve take approvers" });
    }
  });
  cfg.budgets.forEach((b, i) => b.connections?.forEach((c, j) => {
    if (!connectionNames.has(c)) ctx.addIssue({ code: "custom", path: ["budgets", i, "connections", j], message: `no connection named "${c}"` });
  }));
  const budgetNames = new Map<string, number>();
  cfg.budgets.forEach((b, i) => {
    const name = b.name ?? `budget-${i}`;
    const first = budgetNames.get(name);
    if (first !== undefined) ctx.addIssue({ code: "custom", path: ["budgets", i, "name"], message: `duplicate budget name "${name}" (first at budgets[${first}])` });
    else budgetNames.set(name, i);
  });
  cfg.masking.forEach((m, i) => m.connections?.forEach((c, j) => {
    if (!connectionNames.has(c)) ctx.addIssue({ code: "custom", path: ["masking", i, "connections", j], message: `no connection named "${c}"` });
  }));
  if (cfg.identity.issuers.length === 0 && !cfg.identity.dev_issuer) {
    ctx.addIssue({ code: "custom", path: ["identity"], message: "no token issuer: configure identity.issuers or set identity.dev_issuer: true" });
  }
  cfg.connections.forEach((c, i) => {
    if (c.type === "http" && !cfg.gateway.http) ctx.addIssue({ code: "custom", path: ["connections", i, "type"], message: "http connections are served on gateway.http, which is not set" });
  });
  for (const key of ["mysql", "ssh"] as const) {
    if (cfg.gateway[key]) ctx.addIssue({ code: "custom", path: ["gateway", key], message: `the ${key} listener is not available in this version` });
  }
  if (cfg.store && !cfg.store.startsWith("sqlite:")) {
    ctx.addIssue({ code: "custom", path: ["store"], message: "only the embedded sqlite: store is available in this version" });
  }
});

export type Config = z.infer<typeof configSchema>;
export type PostgresConnection = z.infer<typeof postgresConnection>;
export type HttpConnection = z.infer<typeof httpConnection>;
export type ConnectionConfig = z.infer<typeof connection>;
export type IssuerConfig = z.infer<typeof issuer>;
export type RuleConfig = z.infer<typeof rule>;
export type MaskingRuleConfig = z.infer<typeof maskingRule>;
export type AuditConfig = z.infer<typeof audit>;
export type AuditSinkConfig = z.infer<typeof auditSink>;
export type WebhookTarget = z.infer<typeof webhookTarget>;
export type ApprovalsConfig = z.infer<typeof approvals>;
export type SlackNotifierConfig = z.infer<typeof slackNotifier>;
export type EmailNotifierConfig = z.infer<typeof emailNotifier>;
export type BudgetConfig = z.infer<typeof budget>;
export type AlertChannelConfig = z.infer<typeof alertChannel>;
export type AlertKind = (typeof ALERT_KINDS)[number];
