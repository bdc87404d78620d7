/**
 * Slack: the request as an incoming-webhook message with Approve and Deny buttons (Block Kit).
 * The buttons come back to the gateway's interactivity endpoint (api/slack.ts), which checks
 * Slack's request signature and maps the Slack user to an approver identity.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Logger } from "../../core/logger.js";
import { backoff, postSigned } from "../../audit/webhook.js";
import { clipped } from "../display.js";
import type { Approval } from "../approval.js";

/** Slack's replay window for signed requests. */
export const SLACK_MAX_AGE_S = 300;
export const SLACK_BLOCK_ID = "portcullis_approval";

export function slackMessage(a: Approval): Record<string, unknown> {
  const who = `\`${a.requester.sub}\` on \`${a.connection}\` (rule \`${a.rule}\`)`;
  // A section holds 3000 characters; what does not fit is said to be missing, not silently dropped.
  const op = clipped(a.operation.display, 2400, a.id);
  const need = a.minApprovals > 1 ? ` · ${a.minApprovals} approvals needed` : "";
  return {
    text: `Approval requested by ${a.requester.sub} on ${a.connection} (rule ${a.rule})`,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `*Approval requested* by ${who}\n\`\`\`${op.replace(/`/g, "'")}\`\`\`` } },
      { type: "context", elements: [{ type: "mrkdwn", text: `approval ${a.id} · ${a.mode} · expires ${a.expiresAt}${need}` }] },
      {
        type: "actions",
        block_id: SLACK_BLOCK_ID,
        elements: [
          { type: "button", text: { type: "plain_text", text: "Approve" }, style: "primary", action_id: "approve", value: a.id },
          { type: "button", text: { type: "plain_text", text: "Deny" }, style: "danger", action_id: "deny", value: a.id },
        ],
      },
    ],
  };
}

export async function notifySlack(webhookUrl: string, a: Approval, logger: Logger): Promise<void> {
  const body = JSON.stringify(slackMessage(a));
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await postSigned({ url: webhookUrl, body });
      return;
    } catch (err) {
      if (attempt === 4) logger.warn({ approval: a.id, err: (err as Error).message }, "slack notification gave up");
      else await new Promise((r) => setTimeout(r, backoff(attempt)).unref());
    }
  }
}

/** Slack's v0 signature: HMAC-SHA256 over "v0:<timestamp>:<body>", within the replay window. */
export function slackSignatureValid(secret: string, timestamp: string | undefined, signature: string | undefined, body: string, nowS = Date.now() / 1000): boolean {
  if (!timestamp || !signature || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(nowS - Number(timestamp)) > SLACK_MAX_AGE_S) return false;
  const expected = Buffer.from(`v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
