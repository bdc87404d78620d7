/**
 * Alerts: security events someone should hear about now, not find later. Raised here, counted,
 * logged; channels (webhook, Slack, e-mail) subscribe to "alert" events.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "./logger.js";
import type { GatewayMetrics } from "./metrics.js";

export type AlertKind = "audit_unavailable";

export interface Alert {
  kind: AlertKind;
  at: Date;
  /** Plain facts; never a credential, token or row value. */
  detail: Record<string, unknown>;
}

export class AlertBus extends EventEmitter {
  constructor(private readonly logger: Logger, private readonly metrics: GatewayMetrics) {
    super();
  }

  raise(kind: AlertKind, detail: Record<string, unknown>): void {
    const alert: Alert = { kind, at: new Date(), detail };
    this.metrics.alerts.inc({ kind });
    this.logger.error({ alert: kind, ...detail }, "alert");
    this.emit("alert", alert);
  }
}
