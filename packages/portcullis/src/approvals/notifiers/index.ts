/** Sends each approval request (and decision, to webhooks) to the configured channels; never blocks the request. */
import type { LoadedConfig } from "../../config/load.js";
import type { Logger } from "../../core/logger.js";
import type { Approval } from "../approval.js";
import type { ApprovalService } from "../service.js";
import { notifyEmail } from "./email.js";
import { notifySlack } from "./slack.js";
import { notifyWebhook } from "./webhook.js";

/** `publicUrl`: where approvers reach the gateway's HTTP listener (links in e-mails). */
export function startNotifiers(service: ApprovalService, config: () => LoadedConfig, logger: Logger, publicUrl: () => string): void {
  service.on("requested", (a: Approval) => {
    for (const n of config().approvals.notify) {
      if (n.webhook) void notifyWebhook(n.webhook, "approval_requested", a, logger);
      if (n.slack) void notifySlack(n.slack.webhook_url, a, logger);
      if (n.email) void notifyEmail(n.email, service, a, publicUrl(), logger);
    }
  });
  service.on("decided", (a: Approval) => {
    for (const n of config().approvals.notify) if (n.webhook) void notifyWebhook(n.webhook, "approval_decided", a, logger);
  });
}
