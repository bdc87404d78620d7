/** Sends each approval request (and decision, to webhooks) to the configured channels; never blocks the request. */
import type { LoadedConfig } from "../../config/load.js";
import type { Logger } from "../../core/logger.js";
import type { Approval } from "../approval.js";
import type { ApprovalService } from "../service.js";
import { notifySlack } from "./slack.js";
import { notifyWebhook } from "./webhook.js";

export function startNotifiers(service: ApprovalService, config: () => LoadedConfig, logger: Logger): void {
  service.on("requested", (a: Approval) => {
    for (const n of config().approvals.notify) {
      if (n.webhook) void notifyWebhook(n.webhook, "approval_requested", a, logger);
      if (n.slack) void notifySlack(n.slack.webhook_url, a, logger);
    }
  });
  service.on("decided", (a: Approval) => {
    for (const n of config().approvals.notify) if (n.webhook) void notifyWebhook(n.webhook, "approval_decided", a, logger);
  });
}
