/**
 * Alerts: security events someone should hear about now, not find later. Each alert is counted,
 * logged, written to the audit log, and sent to every channel of `alerts:` that listens for its
 * kind (webhook with an HMAC signature, Slack incoming webhook, e-mail). The same alert (kind and
 * subject) goes to a channel at most once per that channel's `dedupe` window, so a loop cannot
 * flood it; what was suppressed is counted and said in the next one.
 */
import { EventEmitter } from "node:events";
import type { AuditEntry } from "../audit/chain.js";
import { backoff, postSigned } from "../audit/webhook.js";
import { transportFor } from "../approvals/notifiers/email.js";
import type { AlertChannelConfig, AlertKind } from "../config/schema.js";
import type { Logger } from "./logger.js";
import type { GatewayMetrics } from "./metrics.js";

export type { AlertKind };

export interface Alert {
  kind: AlertKind;
  at: Date;
  /** Plain facts; never a credential, token or row value. */
  detail: Record<string, unknown>;
  /** Alerts with the same kind and subject are de-duplicated together. */
  subject: string;
  /** How many identical alerts this channel suppressed before this one. */
  suppressed?: number;
}

export interface AlertBusOptions {
  logger: Logger;
  metrics: GatewayMetrics;
  channels: () => readonly AlertChannelConfig[];
  audit: (entry: AuditEntry) => void;
}

export class AlertBus extends EventEmitter {
  /** channel index + kind + subject → until when it is quiet, and how many were suppressed. */
  private readonly quiet = new Map<string, { until: number; suppressed: number }>();

  constructor(private readonly o: AlertBusOptions) {
    super();
  }

  raise(kind: AlertKind, detail: Record<string, unknown>, subject = ""): void {
    const alert: Alert = { kind, at: new Date(), detail, subject };
    this.o.metrics.alerts.inc({ kind });
    this.o.logger.warn({ alert: kind, ...detail }, "alert");
    this.o.audit({ type: "alert", data: { kind, subject, ...detail } });
    this.emit("alert", alert);
    const now = alert.at.getTime();
    this.o.channels().forEach((ch, i) => {
      if (!ch.on.includes(kind)) return;
      const key = `${i}\0${kind}\0${subject}`;
      const q = this.quiet.get(key);
      if (q && q.until > now) {
        q.suppressed++;
        return;
      }
      this.quiet.set(key, { until: now + ch.dedupe, suppressed: 0 });
      void this.deliver(ch, { ...alert, ...(q?.suppressed ? { suppressed: q.suppressed } : {}) });
    });
    if (this.quiet.size > 10_000) for (const [k, q] of this.quiet) if (q.until <= now) this.quiet.delete(k);
  }

  private async deliver(ch: AlertChannelConfig, a: Alert): Promise<void> {
    const payload = { alert: a.kind, at: a.at.toISOString(), subject: a.subject, detail: a.detail, ...(a.suppressed ? { suppressed: a.suppressed } : {}) };
    const text = `[portcullis] ${a.kind}${a.subject ? ` (${a.subject})` : ""}: ${Object.entries(a.detail).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ")}${a.suppressed ? ` (+${a.suppressed} suppressed)` : ""}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        if (ch.webhook) await postSigned({ url: ch.webhook.url, body: JSON.stringify(payload), ...(ch.webhook.secret ? { secret: ch.webhook.secret } : {}) });
        else if (ch.slack) await postSigned({ url: ch.slack.webhook_url, body: JSON.stringify({ text }) });
        else if (ch.email) {
          for (const to of ch.email.to) await transportFor(ch.email).sendMail({ from: ch.email.from, to, subject: `[portcullis] alert: ${a.kind}`, text: `${text}\n\n${JSON.stringify(payload, null, 2)}` });
        }
        return;
      } catch (err) {
        if (attempt === 4) this.o.logger.warn({ alert: a.kind, err: (err as Error).message }, "alert could not be delivered");
        else await new Promise((r) => setTimeout(r, backoff(attempt)).unref());
      }
    }
  }
}
