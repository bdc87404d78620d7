/** Approval requests and decisions as signed JSON to a webhook (a ticketing system, a bot). */
import type { Logger } from "../../core/logger.js";
import { backoff, postSigned } from "../../audit/webhook.js";
import { type Approval, publicView } from "../approval.js";

const ATTEMPTS = 6;

export async function notifyWebhook(target: { url: string; secret?: string }, event: "approval_requested" | "approval_decided", a: Approval, logger: Logger): Promise<void> {
  const body = JSON.stringify({ event, approval: publicView(a) });
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      await postSigned({ url: target.url, body, ...(target.secret ? { secret: target.secret } : {}) });
      return;
    } catch (err) {
      if (attempt + 1 === ATTEMPTS) {
        logger.warn({ approval: a.id, err: (err as Error).message }, "approval webhook gave up");
        return;
      }
      await new Promise((r) => setTimeout(r, backoff(attempt)).unref());
    }
  }
}
