/** What every protocol adapter is handed by the composition root: the core, and nothing else. */
import type { SecureContext } from "node:tls";
import type { LoadedConfig } from "../config/load.js";
import type { TokenVerifier } from "../identity/principal.js";
import type { PolicyEngine } from "../policy/engine.js";
import type { ClassificationCache } from "../policy/sql/cache.js";
import type { AlertBus } from "./alerts.js";
import type { ApprovalGate } from "./approval-gate.js";
import type { Containment } from "./containment.js";
import type { Detections } from "./detections.js";
import type { Logger } from "./logger.js";
import type { LoginRefusals } from "./login-refusals.js";
import type { GatewayMetrics } from "./metrics.js";
import type { SessionManager } from "./sessions.js";

export interface GatewayContext {
  /** The config in force; replaced on reload, so read it per use rather than caching it. */
  config(): LoadedConfig;
  verifier: TokenVerifier;
  /** The rules in force; replaced on reload. */
  policy(): PolicyEngine;
  /** Shared classification cache of SQL text (pure results, safe to share across sessions). */
  sqlCache: ClassificationCache;
  sessions: SessionManager;
  /** Operations that need a human's yes go through here. */
  approvals: ApprovalGate;
  /** Revocations, freezes, budgets. */
  containment: Containment;
  alerts: AlertBus;
  /** Refused logins become (rate-limited) audit records here. */
  loginRefusals: LoginRefusals;
  detections: Detections;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Per-deployment key of the masking `hash` strategy (data_dir/masking.key). */
  maskingKey: Buffer;
  /** TLS for agent-facing listeners (configured pair, or a generated self-signed one). */
  serverTls(): SecureContext;
}
