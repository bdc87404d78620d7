/**
 * Revocation covers people, not only agents: over raw HTTP to the gateway's admin API, a revoked
 * admin (by subject, token, group or issuer) can do nothing, not even lift their own revocation;
 * a revoked approver's vote is refused by API, Slack and e-mail link, and the vote they cast
 * before the revocation no longer completes an approval; nothing on a frozen connection is
 * approved; an approval is visible and cancellable only by its requester, its approver groups
 * and admins. Also: refused logins (bad token, no access) over PostgreSQL and HTTP are audit
 * records that name no token.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import pg from "pg";
import type { Approval } from "../../src/approvals/approval.js";
import { DEV_ISSUER_ISS } from "../../src/identity/dev-issuer.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const SLACK_SECRET = "slack-signing-secret-admin-revocation";

describe("revocation covers people", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let sink: Server;
  let seq = 0;
  const url = () => `http://127.0.0.1:${gw.httpPort}`;

  const api = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url()}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };
  const admin = (sub = "responder") => gw.token(sub, ["security"]);

  /** A pending approval on `connection`, requested by `requester`, decided by `approvers`. */
  const request = (opts: { requester?: string; approvers?: string[]; min?: number; connection?: string } = {}): Approval => gw.gw.approvals.request({
    principal: { sub: opts.requester ?? "agent-1", groups: ["agents"], iss: DEV_ISSUER_ISS, exp: 0, run: {} },
    session: `s-${++seq}`,
    connection: opts.connection ?? "app",
    rule: { name: "deletes", approvers: opts.approvers ?? ["dba"], min_approvals: opts.min ?? 1, expires_after: 3_600_000, grant: { kind: "once" } },
    operation: { type: "sql", display: "delete from customers where id = 1" },
    onceKey: `once-${seq}`,
    windowKey: `window-${seq}`,
    mode: "defer",
  });
  const revoke = async (kind: string, value: string) => {
    const r = await api(await admin("head-of-security"), "POST", "/api/revocations", { kind, value, reason: "test" });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return (r.body.revocation as { id: string }).id;
  };
  const lift = async (id: string) => assert.equal((await api(await admin("head-of-security"), "DELETE", `/api/revocations/${id}`)).status, 200);
  const state = (id: string) => gw.gw.approvals.get(id)!.state;

  before(async () => {
    target = await startTarget();
    // Where Slack notifications go (nowhere that matters).
    sink = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;
    const pgTarget = { host: target.pg.host, port: target.pg.port, database: "app", tls: "disable" };
    gw = await startTestGateway({
      target,
      connections: [
        { name: "app", type: "postgres", target: pgTarget, credentials: { username: "app_user", password: "x" }, access: ["agents"] },
        { name: "billing", type: "http", target: { url: sinkUrl }, access: ["agents"] },
      ],
      overrides: {
        approvals: {
          notify: [{ slack: { webhook_url: `${sinkUrl}/slack`, signing_secret: SLACK_SECRET, users: { U0DBA1: { sub: "dba-slack", groups: ["dba"] } } } }],
        },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    sink?.close();
  });

  it("a revoked admin cannot lift its own revocation, nor do anything else", async () => {
    const token = await admin("rogue-admin");
    assert.equal((await api(token, "GET", "/api/revocations")).status, 200, "an admin before the revocation");
    const id = await revoke("subject", "rogue-admin");
    const attempts = [
      await api(token, "DELETE", `/api/revocations/${id}`),
      await api(token, "GET", "/api/revocations"),
      await api(token, "POST", "/api/revocations", { kind: "subject", value: "head-of-security" }),
      await api(token, "GET", "/api/sessions"),
      await api(token, "POST", "/api/freezes/app", {}),
      await api(token, "DELETE", "/api/freezes/app"),
      await api(token, "GET", "/api/approvals"),
    ];
    for (const r of attempts) assert.deepEqual([r.status, r.body.error], [403, "revoked"]);
    assert.ok(gw.gw.containment.revocations().some((r) => r.id === id), "the revocation still stands");
    assert.ok(!gw.gw.containment.revocations().some((r) => r.value === "head-of-security"));
    assert.equal(gw.gw.containment.freezes().length, 0);
    gw.gw.journal.flush();
    const alerts = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "alert" && r.data.includes('"revoked_identity_used"') && r.data.includes("rogue-admin"));
    assert.ok(alerts.length >= 1 && alerts.every((r) => r.data.includes('"admin_api"')), "each use is an alert naming the admin API");
    await lift(id);
    assert.equal((await api(token, "GET", "/api/revocations")).status, 200, "lifted by another admin, the admin acts again");
  });

  it("revocation by token, group and issuer stops an admin too", async () => {
    const token = await admin("admin-2");
    const payload = decodeJwt(token);
    for (const [kind, value] of [["jti", String(payload.jti)], ["group", "security"], ["issuer", String(payload.iss)]] as const) {
      const id = await revoke(kind, value);
      const r = await api(token, "DELETE", `/api/revocations/${id}`);
      assert.deepEqual([kind, r.status], [kind, 403]);
      // Lifting needs an admin the revocation does not cover: the store, for a group or issuer revocation.
      gw.gw.containment.lift(id, "test");
    }
  });

  it("a revoked approver's vote is refused (API, Slack, e-mail link), and the vote cast before no longer counts", async () => {
    // Two of two: dba-1 approves, is revoked, then dba-2 approves: only one vote counts now.
    const a = request({ min: 2 });
    const first = await api(await gw.token("dba-1", ["dba"]), "POST", `/api/approvals/${a.id}/approve`, {});
    assert.equal(first.status, 200);
    const id = await revoke("subject", "dba-1");
    const second = await api(await gw.token("dba-2", ["dba"]), "POST", `/api/approvals/${a.id}/approve`, {});
    assert.equal(second.status, 200);
    assert.equal(second.body.counted_approvals, 1);
    assert.equal(state(a.id), "pending", "the revoked approver's earlier vote did not complete the approval");
    assert.equal(gw.gw.store.useGrant({ sub: "agent-1", iss: DEV_ISSUER_ISS, connection: "app", onceKey: a.onceKey, windowKey: a.windowKey, now: Date.now() }), undefined);

    // The revoked approver, by API with a fresh token:
    const again = await api(await gw.token("dba-1", ["dba"]), "POST", `/api/approvals/${a.id}/approve`, {});
    assert.equal(again.status, 403);

    // ... through an e-mail link with a valid code:
    const codes = gw.gw.approvals.issueLinks(a.id, ["dba-1@example.com"]).get("dba-1@example.com")!;
    const link = await fetch(`${url()}/approvals/${a.id}/approve`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ code: codes.approve, token: await gw.token("dba-1", ["dba"]) }).toString(),
    });
    assert.equal(link.status, 403);
    assert.ok(gw.gw.approvals.linkValid(a.id, "approve", codes.approve), "the link was not spent");
    assert.equal(state(a.id), "pending");

    // ... and through Slack, where a mapped user is revoked by its identity's subject or group.
    const b = request();
    const slack = (user: string, approval: string) => {
      const body = `payload=${encodeURIComponent(JSON.stringify({ type: "block_actions", user: { id: user }, actions: [{ block_id: "portcullis_approval", action_id: "approve", value: approval }] }))}`;
      const ts = Math.floor(Date.now() / 1000);
      return fetch(`${url()}/api/slack/interactivity`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-slack-request-timestamp": String(ts),
          "x-slack-signature": `v0=${createHmac("sha256", SLACK_SECRET).update(`v0:${ts}:${body}`).digest("hex")}`,
        },
        body,
      });
    };
    const slackRevocation = await revoke("subject", "dba-slack");
    assert.equal((await slack("U0DBA1", b.id)).status, 403);
    assert.equal(state(b.id), "pending");
    await lift(slackRevocation);
    const groupRevocation = await revoke("group", "dba");
    assert.equal((await slack("U0DBA1", b.id)).status, 403, "a group revocation reaches the groups a Slack user is mapped to");
    assert.equal(state(b.id), "pending");
    gw.gw.containment.lift(groupRevocation, "test");
    assert.equal((await slack("U0DBA1", b.id)).status, 200);
    assert.equal(state(b.id), "approved");

    // Once lifted, the earlier vote counts again.
    await lift(id);
    const c = request({ min: 2 });
    await api(await gw.token("dba-1", ["dba"]), "POST", `/api/approvals/${c.id}/approve`, {});
    await revoke("subject", "dba-1").then(lift);
    await api(await gw.token("dba-2", ["dba"]), "POST", `/api/approvals/${c.id}/approve`, {});
    assert.equal(state(c.id), "approved");
  });

  it("nothing on a frozen connection is approved; denying still works", async () => {
    const a = request();
    assert.equal((await api(await admin(), "POST", "/api/freezes/app", {})).status, 201);
    const r = await api(await gw.token("dba-1", ["dba"]), "POST", `/api/approvals/${a.id}/approve`, {});
    assert.equal(r.status, 409);
    assert.equal(state(a.id), "pending");
    assert.equal((await api(await gw.token("dba-1", ["dba"]), "POST", `/api/approvals/${a.id}/deny`, {})).status, 200);
    assert.equal(state(a.id), "denied");
    assert.equal((await api(await admin(), "DELETE", "/api/freezes/app")).status, 200);
  });

  it("an approval is visible and cancellable only by its requester, its approver groups and admins", async () => {
    const a = request({ requester: "agent-7", approvers: ["dba"] });
    const outsider = await gw.token("agent-8", ["agents", "finance"]);
    const list = await api(outsider, "GET", "/api/approvals?state=pending");
    assert.equal(list.status, 200);
    assert.ok(!(list.body.approvals as Approval[]).some((x) => x.id === a.id), "not in an outsider's list");
    assert.equal((await api(outsider, "GET", `/api/approvals/${a.id}`)).status, 404);
    assert.equal((await api(outsider, "DELETE", `/api/approvals/${a.id}`)).status, 404);
    assert.equal((await api(outsider, "POST", `/api/approvals/${a.id}/deny`, {})).status, 404);
    assert.equal(state(a.id), "pending", "the outsider could not cancel or deny it");

    // An approver of another rule is an outsider here too.
    const otherApprover = await gw.token("fin-1", ["finance-approvers"]);
    const b = request({ approvers: ["finance-approvers"] });
    assert.equal((await api(otherApprover, "GET", `/api/approvals/${a.id}`)).status, 404);
    assert.deepEqual((await api(otherApprover, "GET", "/api/approvals?state=pending")).body.approvals, [(await api(otherApprover, "GET", `/api/approvals/${b.id}`)).body]);

    for (const [who, token] of [["requester", await gw.token("agent-7", ["agents"])], ["approver", await gw.token("dba-3", ["dba"])], ["admin", await admin()]] as const) {
      assert.equal((await api(token, "GET", `/api/approvals/${a.id}`)).status, 200, who);
      assert.ok(((await api(token, "GET", "/api/approvals?state=pending")).body.approvals as Approval[]).some((x) => x.id === a.id), who);
    }
    assert.equal((await api(await gw.token("agent-7", ["agents"]), "DELETE", `/api/approvals/${a.id}`)).status, 200);
    assert.equal(state(a.id), "cancelled");
    const c = request({ approvers: ["dba"] });
    assert.equal((await api(await gw.token("dba-3", ["dba"]), "DELETE", `/api/approvals/${c.id}`)).status, 200);
    assert.equal(state(c.id), "cancelled");
  });

  it("refused logins are audit records naming protocol, connection, client, reason and (when known) subject, never the token", async () => {
    const badToken = `${(await gw.token("agent-1", ["agents"])).slice(0, -6)}AAAAAA`;
    const noAccess = await gw.token("intern-9", ["interns"]);
    for (const password of [badToken, noAccess]) {
      const c = new pg.Client({ ...gw.clientConfig(password, "app") });
      c.on("error", () => {});
      await assert.rejects(c.connect());
    }
    assert.equal((await fetch(`${url()}/c/billing/v1/x`, { headers: { authorization: `Bearer ${badToken}` } })).status, 401);
    assert.equal((await fetch(`${url()}/c/billing/v1/x`, { headers: { authorization: `Bearer ${noAccess}` } })).status, 403);
    gw.gw.journal.flush();
    const rows = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "login_refused");
    const data = rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
    for (const protocol of ["postgres", "http"]) {
      const connection = protocol === "postgres" ? "app" : "billing";
      assert.ok(data.some((d) => d.protocol === protocol && d.connection === connection && d.reason === "E_TOKEN_INVALID" && d.sub === undefined && /^127\.0\.0\.1:\d+$/.test(String(d.client))), `${protocol} bad token`);
      assert.ok(data.some((d) => d.protocol === protocol && d.connection === connection && d.reason === "E_ACCESS_DENIED" && d.sub === "intern-9"), `${protocol} no access`);
    }
    for (const r of rows) {
      assert.ok(!r.data.includes(badToken.slice(0, 40)) && !r.data.includes(noAccess.slice(0, 40)), "no token in the record");
    }
  });
});
