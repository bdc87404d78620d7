/**
 * POST /api/slack/interactivity: Slack's callback when an approver presses Approve or Deny.
 * The request must carry a valid v0 signature from a configured Slack app, made within the last
 * five minutes; the Slack user must be in that notifier's `users` table, which names the identity
 * that decides (sub and groups, issuer "slack"). Revocations apply to that identity as to any
 * other: a revoked subject or group, or the issuer "slack" as a whole, decides nothing (403).
 * Everything else is refused, and the decision rules are the service's.
 */
import type { FastifyInstance } from "fastify";
import { SLACK_BLOCK_ID, slackSignatureValid } from "../approvals/notifiers/slack.js";
import type { ApprovalService } from "../approvals/service.js";
import type { GatewayContext } from "../core/context.js";
import { isPortcullisError } from "../errors.js";
import type { Principal } from "../identity/principal.js";
import { clientOf } from "./auth.js";

/** The issuer of identities mapped from Slack users (what an `issuer` revocation names). */
export const SLACK_ISSUER = "slack";

interface BlockActions {
  type?: string;
  user?: { id?: string };
  actions?: { action_id?: string; value?: string; block_id?: string }[];
}

export function registerSlackRoutes(app: FastifyInstance, ctx: GatewayContext, service: ApprovalService): void {
  void app.register(async (scope) => {
    // Slack posts a form; the signature covers the raw body, so it is kept as a string.
    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));
    scope.post("/api/slack/interactivity", async (req, reply) => {
      const raw = typeof req.body === "string" ? req.body : "";
      const ts = req.headers["x-slack-request-timestamp"] as string | undefined;
      const sig = req.headers["x-slack-signature"] as string | undefined;
      const app = ctx.config().approvals.notify.map((n) => n.slack).find((s) => s && slackSignatureValid(s.signing_secret, ts, sig, raw));
      if (!app) return reply.code(401).send({ error: "unauthorized", message: "invalid or expired Slack signature" });
      let payload: BlockActions;
      try {
        payload = JSON.parse(new URLSearchParams(raw).get("payload") ?? "") as BlockActions;
      } catch {
        return reply.code(400).send({ error: "bad_request", message: "no payload" });
      }
      const action = payload.actions?.find((a) => a.block_id === SLACK_BLOCK_ID || a.action_id === "approve" || a.action_id === "deny");
      if (payload.type !== "block_actions" || !action?.value || (action.action_id !== "approve" && action.action_id !== "deny")) {
        return reply.code(400).send({ error: "bad_request", message: "not an approval action" });
      }
      const user = payload.user?.id ? app.users[payload.user.id] : undefined;
      if (!user) return reply.code(403).send({ text: `Slack user ${payload.user?.id ?? "?"} is not mapped to an approver identity` });
      const approver: Principal = { sub: user.sub, groups: [...user.groups], iss: SLACK_ISSUER, exp: 0, run: {} };
      try {
        ctx.containment.admitActor(approver, "slack", clientOf(req));
        const a = service.decide(action.value, approver, action.action_id, `via Slack by ${payload.user!.id}`);
        return { text: `Approval ${a.id}: ${a.state === "pending" ? `recorded (${service.countedApprovals(a)} of ${a.minApprovals})` : a.state}` };
      } catch (err) {
        if (isPortcullisError(err)) return reply.code(err.code === "E_APPROVAL_NOT_FOUND" ? 404 : err.code === "E_APPROVAL_CLOSED" || err.code === "E_FROZEN" ? 409 : 403).send({ text: err.message });
        throw err;
      }
    });
  });
}
