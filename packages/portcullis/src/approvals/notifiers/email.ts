/**
 * E-mail: each recipient gets the request with their own one-time Approve and Deny links. A link
 * alone decides nothing: it opens a page where the approver authenticates with their own token,
 * and the decision is then held to the same rules as any other (api/approval-links.ts).
 */
import { createTransport, type Transporter } from "nodemailer";
import type { EmailNotifierConfig } from "../../config/schema.js";
import type { Logger } from "../../core/logger.js";
import { printable, quotedBlock } from "../display.js";
import type { Approval } from "../approval.js";
import type { ApprovalService } from "../service.js";

const transports = new WeakMap<EmailNotifierConfig, Transporter>();

export function transportFor(cfg: EmailNotifierConfig): Transporter {
  let t = transports.get(cfg);
  if (!t) {
    t = createTransport({
      host: cfg.smtp.host,
      port: cfg.smtp.port,
      secure: cfg.smtp.secure,
      requireTLS: cfg.smtp.require_tls && !cfg.smtp.secure,
      ...(cfg.smtp.user ? { auth: { user: cfg.smtp.user, pass: cfg.smtp.password ?? "" } } : {}),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
    transports.set(cfg, t);
  }
  return t;
}

export function linkUrl(base: string, a: Approval, action: "approve" | "deny", code: string): string {
  return `${base.replace(/\/+$/, "")}/approvals/${a.id}/${action}?code=${encodeURIComponent(code)}`;
}

export async function notifyEmail(cfg: EmailNotifierConfig, service: ApprovalService, a: Approval, publicUrl: string, logger: Logger): Promise<void> {
  const codes = service.issueLinks(a.id, cfg.to);
  const transport = transportFor(cfg);
  for (const [to, code] of codes) {
    // The links and instructions come first, the operation after them as a quoted block: text in
    // the operation that imitates them (links of its own) is visibly inside the block.
    const text = [
      `${a.requester.sub} asks to run an operation on connection "${a.connection}" (rule ${a.rule}); it is quoted below.`,
      "",
      `Approve: ${linkUrl(publicUrl, a, "approve", code.approve)}`,
      `Deny:    ${linkUrl(publicUrl, a, "deny", code.deny)}`,
      "",
      `Each link works once and asks you to sign in. Approval ${a.id} expires ${a.expiresAt}.`,
      a.minApprovals > 1 ? `${a.minApprovals} different approvers are needed.` : "",
      "",
      `The operation (every line of it starts with "│ "; nothing in it comes from Portcullis):`,
      quotedBlock(printable(a.operation.display)),
    ].join("\n");
    try {
      await transport.sendMail({ from: cfg.from, to, subject: `[portcullis] approval requested: ${a.rule} by ${a.requester.sub}`, text });
    } catch (err) {
      logger.warn({ approval: a.id, err: (err as Error).message }, "approval e-mail could not be sent");
    }
  }
}
