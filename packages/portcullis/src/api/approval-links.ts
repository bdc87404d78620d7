/**
 * The pages behind e-mailed approval links. GET shows the request and asks the approver to sign in
 * with their own token; POST checks the one-time code and the token together and decides. A
 * forwarded e-mail is therefore useless without the approver's identity, and a link works once.
 * The signed-in approver is held to revocations like any other: a revoked one decides nothing
 * (403, the link stays unspent) and the attempt raises a revoked_identity_used alert.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import type { Approval } from "../approvals/approval.js";
import type { ApprovalService } from "../approvals/service.js";
import type { GatewayContext } from "../core/context.js";
import { isPortcullisError } from "../errors.js";
import { clientOf } from "./auth.js";

type Params = { id: string; action: string };

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply.code(status).header("content-type", "text/html; charset=utf-8")
    .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    .header("cache-control", "no-store")
    .send(`<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body style="font-family:sans-serif;max-width:48em;margin:2em auto">${body}</body></html>`);
}

function describe(a: Approval): string {
  return `<p><b>${esc(a.requester.sub)}</b> asks to run this on connection <b>${esc(a.connection)}</b> (rule ${esc(a.rule)}):</p><pre style="white-space:pre-wrap;background:#f4f4f4;padding:1em">${esc(a.operation.display)}</pre><p>State: ${esc(a.state)} · expires ${esc(a.expiresAt)}</p>`;
}

export function registerApprovalLinkRoutes(app: FastifyInstance, ctx: GatewayContext, service: ApprovalService): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

    scope.get<{ Params: Params; Querystring: { code?: string } }>("/approvals/:id/:action", async (req, reply) => {
      const { id, action } = req.params;
      const code = req.query.code ?? "";
      if ((action !== "approve" && action !== "deny") || !service.linkValid(id, action, code)) {
        return page(reply, 410, "Link not valid", "<p>This link is not valid or was already used.</p>");
      }
      const a = service.get(id)!;
      return page(reply, 200, `${action} approval`, `<h1>${action === "approve" ? "Approve" : "Deny"} this request?</h1>${describe(a)}
<form method="post"><input type="hidden" name="code" value="${esc(code)}">
<p><label>Your token (from your identity provider, or <code>portcullis token issue</code>)<br><input type="password" name="token" size="60" autocomplete="off" required></label></p>
<p><label>Reason (optional)<br><input type="text" name="reason" size="60" maxlength="500"></label></p>
<p><button type="submit">${action === "approve" ? "Approve" : "Deny"}</button></p></form>`);
    });

    scope.post<{ Params: Params }>("/approvals/:id/:action", async (req, reply) => {
      const { id, action } = req.params;
      const form = new URLSearchParams(typeof req.body === "string" ? req.body : "");
      const code = form.get("code") ?? "";
      if ((action !== "approve" && action !== "deny") || !service.linkValid(id, action, code)) {
        return page(reply, 410, "Link not valid", "<p>This link is not valid or was already used.</p>");
      }
      let who;
      try {
        who = await ctx.verifier.verify(form.get("token") ?? "");
      } catch {
        return page(reply, 401, "Sign-in failed", "<p>The token is not valid. Nothing was decided; the link still works.</p>");
      }
      try {
        ctx.containment.admitActor(who, "email_link", clientOf(req));
        const a = service.decideByLink(id, action, code, who);
        return page(reply, 200, "Recorded", `<h1>Recorded</h1>${describe(a)}<p>Thank you, ${esc(who.sub)}.</p>`);
      } catch (err) {
        if (isPortcullisError(err)) return page(reply, err.code === "E_APPROVAL_CLOSED" || err.code === "E_FROZEN" ? 409 : 403, "Not recorded", `<p>${esc(err.message)}</p>`);
        throw err;
      }
    });
  });
}
