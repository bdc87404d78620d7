/**
 * POSTs batches as `{"records":[...]}`, signed with the sink's secret. A batch may arrive twice
 * (the answer was lost, or the gateway restarted before saving its cursor): receivers de-duplicate
 * by `seq`.
 */
import type { ExportedRecord } from "../chain.js";
import { postSigned } from "../webhook.js";
import type { AuditSink, WebhookSinkConfig } from "./types.js";

export class WebhookSink implements AuditSink {
  constructor(readonly name: string, private readonly cfg: WebhookSinkConfig, private readonly timeoutMs?: number) {}

  async deliver(records: ExportedRecord[]): Promise<void> {
    if (records.length === 0) return;
    await postSigned({
      url: this.cfg.url,
      body: JSON.stringify({ records }),
      ...(this.cfg.secret !== undefined ? { secret: this.cfg.secret } : {}),
      ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}),
    });
  }

  async close(): Promise<void> {}
}
