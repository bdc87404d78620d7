/**
 * Slack: the request as an incoming-webhook message with Approve and Deny buttons (Block Kit).
 * The buttons come back to the gateway's interactivity endpoint (api/slack.ts), which checks
 * Slack's request signature and maps the Slack user to an approver identity.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Logger } from "../../core/logger.js";
import { backoff, postSigned } from "../../audit/webhook.js";
import { clipped, printable } from "../display.js";
import type { Approval } from "../approval.js";

/** Slack's replay window for signed requests. */
export const SLACK_MAX_AGE_S = 300;
export const SLACK_BLOCK_ID = "portcullis_approval";

/** Slack's mrkdwn control characters, escaped as Slack asks (&amp; &lt; &gt;): no links, mentions or markup from the agent's text. */
const mrkdwnSafe = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/`/g, "'");

/** A section holds 3000 characters. */
const SLACK_OPERATION_CHARS = 2400;

export function slackMessage(a: Approval): Record<string, unknown> {
  const who = `\`${mrkdwnSafe(a.requester.sub)}\` on \`${mrkdwnSafe(a.connection)}\` (rule \`${mrkdwnSafe(a.rule)}\`)`;
  const display = printable(a.operation.display);
  const whole = display.length <= SLACK_OPERATION_CHARS;
  const op = clipped(display, SLACK_OPERATION_CHARS, a.id);
  const need = a.minApprovals > 1 ? ` · ${a.minApprovals} approvals needed` : "";
  // An operation that does not fit gets no buttons: nobody approves what the message could not show.
  const decide = whole
    ? [{
        type: "actions",
        block_id: SLACK_BLOCK_ID,
        elements: [
          { type: "button", text: { type: "plain_text", text: "Approve" }, style: "primary", action_id: "approve", value: a.id },
          { type: "button", text: { type: "plain_text", text: "Deny" }, style: "danger", action_id: "deny", value: a.id },
        ],
      }]
    : [{ type: "context", elements: [{ type: "mrkdwn", text: `too long to show here: read it whole and decide with \`portcullis approvals show ${a.id}\`, then \`approve\` or \`deny\`` }] }];
  return {
    text: `Approval requested by ${a.requester.sub} on ${a.connection} (rule ${a.rule})`,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `*Approval requested* by ${who}\n\`\`\`${mrkdwnSafe(op)}\`\`\`` } },
      { type: "context", elements: [{ type: "mrkdwn", text: `approval ${a.id} · ${a.mode} · expires ${a.expiresAt}${need}` }] },
      ...decide,
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
