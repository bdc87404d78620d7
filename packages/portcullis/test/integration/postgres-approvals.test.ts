/**
 * Approvals end to end: a real PostgreSQL behind a real gateway; agents run statements that rules
 * send for approval; approvers decide through the real `portcullis approvals` CLI (over the admin
 * API), Slack's signed interactivity callback, or not at all. What must hold: a held statement runs
 * the moment it is approved and returns its (masked) data; denial and expiry give PX002; a deferred
 * statement runs once after approval and not again; an approval is bound to the exact statement and
 * the requester; nobody approves their own request; N of M means N different people.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { SMTPServer } from "smtp-server";
import postgres from "postgres";
import type { Approval } from "../../src/approvals/approval.js";
import { signBody } from "../../src/audit/webhook.js";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { libpqEnv, requirePostgresClient } from "../support/clients.js";
import { cli } from "../support/cli.js";

const EMAILS = ["ada@example.com", "grace@example.org", "edsger@example.net", "barbara@example.com", "alan@example.org", "kathleen@example.com"];
const SLACK_SECRET = "slack-signing-secret-for-tests";
const HOOK_SECRET = "approval-hook-secret";

describe("approvals", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;
  let hook: Server;
  let smtp: SMTPServer;
  const mails: string[] = [];
  const hooked: { body: Record<string, unknown>; signatureOk: boolean }[] = [];
  const url = () => `http://127.0.0.1:${gw.httpPort}`;

  /** The CLI as an approver: `portcullis approvals <verb> <id>` with that person's token. */
  const decide = async (verb: "approve" | "deny", id: string, sub: string, extra: string[] = []) =>
    cli(["approvals", verb, id, "--url", url(), ...extra], { PORTCULLIS_TOKEN: await gw.token(sub, ["security"]) });

  const pending = async (pred: (a: Approval) => boolean = () => true, timeoutMs = 10_000): Promise<Approval> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const a = gw.gw.approvals.list({ state: "pending" }).find(pred);
      if (a) return a;
      if (Date.now() > until) throw new Error("no pending approval appeared");
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const agent = async (sub = "agent-1", groups = ["agents"], mode?: "defer") => {
    const c = new pg.Client({ ...gw.clientConfig(await gw.token(sub, groups)), ...(mode ? { options: "-c portcullis.approval=defer" } : {}) });
    await c.connect();
    return c;
  };

  const pgError = (code: string, also?: RegExp) => (e: { code?: string; message: string }) => {
    assert.equal(e.code, code, e.message);
    if (also) assert.match(e.message, also);
    return true;
  };

  const customerIds = async () => (await direct.query<{ id: number }>("select id from customers order by id")).rows.map((r) => r.id);

  before(async () => {
    target = await startTarget();
    direct = await connectDirect(target);
    await direct.query("create table customers (id int primary key, email text, tier text default 'basic')");
    for (const [i, e] of EMAILS.entries()) await direct.query("insert into customers (id, email) values ($1, $2)", [i + 1, e]);
    hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        const ts = String(req.headers["x-portcullis-timestamp"]);
        hooked.push({ body: JSON.parse(body) as Record<string, unknown>, signatureOk: req.headers["x-portcullis-signature"] === signBody(HOOK_SECRET, ts, body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData(stream, _session, done) {
        let raw = "";
        stream.on("data", (c: Buffer) => { raw += c.toString(); });
        stream.on("end", () => { mails.push(raw); done(); });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
    gw = await startTestGateway({
      target,
      overrides: {
        rules: [
          { name: "bulk-export", when: { sql: { statements: ["copy_out"] } }, action: "approve", approvers: ["security"], hold_timeout: "30s" },
          { name: "deletes", when: { sql: { statements: ["delete"] } }, action: "approve", approvers: ["security"], hold_timeout: "1500ms" },
          { name: "two-person", when: { sql: { statements: ["update"] } }, action: "approve", approvers: ["security"], min_approvals: 2 },
        ],
        masking: [{ columns: ["customers.email"], strategy: "redact" }],
        approvals: {
          notify: [
            { webhook: { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/approvals`, secret: HOOK_SECRET } },
            { email: { smtp: { host: "127.0.0.1", port: (smtp.server.address() as { port: number }).port, require_tls: false }, from: "portcullis@example.com", to: ["alice@example.com", "bob@example.com"] } },
            { slack: { webhook_url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/slack`, signing_secret: SLACK_SECRET, users: { U0SEC1: { sub: "sec-1", groups: ["security"] }, U0AGENT: { sub: "agent-4", groups: ["security"] } } } },
          ],
        },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await direct?.end();
    await target?.stop();
    hook?.close();
    smtp?.close();
  });

  it("holds a COPY TO STDOUT until approved through the CLI, then returns its masked data", async () => {
    const psql = requirePostgresClient("psql");
    const token = await gw.token("agent-1", ["agents"]);
    const child = spawn(psql, ["-X", "-v", "ON_ERROR_STOP=1", "-c", "copy (select id, email from customers order by id) to stdout"], {
      env: libpqEnv({ host: gw.host, port: gw.port, user: "agent", password: token, database: "app" }),
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => { out += c.toString(); });
    child.stderr.on("data", (c: Buffer) => { err += c.toString(); });
    const exited = new Promise<number>((r) => child.on("exit", (code) => r(code ?? -1)));

    const a = await pending((x) => x.rule === "bulk-export");
    assert.equal(a.mode, "hold");
    assert.equal(a.requester.sub, "agent-1");
    assert.match(a.operation.display, /copy \(select id, email from customers order by id\) to stdout/);
    assert.equal(out, "", "nothing runs before the approval");
    const listed = await cli(["approvals", "list", "--url", url(), "--json"], { PORTCULLIS_TOKEN: await gw.token("sec-1", ["security"]) });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as Approval[]).some((x) => x.id === a.id));

    const approved = await decide("approve", a.id, "sec-1", ["--reason", "quarterly export"]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /approved/);
    assert.equal(await exited, 0, err);
    const lines = out.trim().split("\n");
    assert.equal(lines.length, EMAILS.length);
    // COPY of a query: the email column is masked as a derived value.
    assert.match(lines[0]!, /^1\t\[REDACTED:[a-z.]+\]$/);
    for (const e of EMAILS) assert.ok(!out.includes(e), "masked data only");
    const decided = gw.gw.approvals.get(a.id)!;
    assert.equal(decided.state, "approved");
    assert.deepEqual(decided.votes.map((v) => [v.sub, v.decision, v.reason]), [["sec-1", "approve", "quarterly export"]]);
  });

  it("fails a held statement with PX002 when it is denied, and when it expires", async () => {
    const c = await agent();
    const denied = c.query("delete from customers where id = 6").then(() => assert.fail("ran"), (e: { code?: string; message: string }) => e);
    const a = await pending((x) => x.rule === "deletes");
    // Through the API in-process: a CLI process can take longer to start on a loaded machine than the 1.5 s hold.
    const r = await fetch(`${url()}/api/approvals/${a.id}/deny`, {
      method: "POST", headers: { authorization: `Bearer ${await gw.token("sec-1", ["security"])}`, "content-type": "application/json" }, body: JSON.stringify({ reason: "not today" }),
    });
    assert.equal(r.status, 200, await r.text());
    pgError("PX002", new RegExp(`approval ${a.id} denied: not today`))(await denied);
    // The session stays usable; the next statement needing approval waits out the 1.5 s hold timeout.
    await assert.rejects(c.query("delete from customers where id = 6"), pgError("PX002", /expired: hold timeout/));
    await c.query("select 1");
    await c.end();
    assert.ok((await customerIds()).includes(6));
  });

  it("in defer mode, runs the retry after approval exactly once; a third attempt needs a new approval", async () => {
    const c = await agent("agent-1", ["agents"], "defer");
    let first: { message: string; detail?: string } | undefined;
    await assert.rejects(c.query("delete from customers where id = 5"), (e: { code?: string; message: string; detail?: string }) => {
      first = e;
      return e.code === "PX001";
    });
    const id = /approval id ([0-9a-f-]{36})/.exec(first!.message)?.[1];
    assert.ok(id, first!.message);
    assert.equal(first!.detail, `approval_id: ${id}`);
    assert.equal(gw.gw.approvals.get(id)!.mode, "defer");
    assert.equal((await decide("approve", id, "sec-1")).code, 0);
    const done = await c.query("delete from customers where id = 5");
    assert.equal(done.rowCount, 1);
    await direct.query("insert into customers (id, email) values (5, 'alan@example.org')");
    await assert.rejects(c.query("delete from customers where id = 5"), (e: { code?: string; message: string }) => e.code === "PX001" && !e.message.includes(id));
    assert.ok((await customerIds()).includes(5));
    await c.end();
  });

  it("binds an approval to the exact statement and to the requester", async () => {
    const c = await agent("agent-1", ["agents"], "defer");
    await assert.rejects(c.query("delete from customers where id = 4"), pgError("PX001"));
    const a = await pending((x) => x.rule === "deletes" && x.mode === "defer" && x.operation.display.includes("id = 4"));
    assert.equal((await decide("approve", a.id, "sec-1")).code, 0);
    // Another statement, even of the same shape, is not approved by it.
    await assert.rejects(c.query("delete from customers where id = 3"), pgError("PX001"));
    // Nor is the same statement by someone else.
    const other = await agent("agent-2", ["agents"], "defer");
    await assert.rejects(other.query("delete from customers where id = 4"), pgError("PX001"));
    await other.end();
    assert.deepEqual(await customerIds(), [1, 2, 3, 4, 5, 6]);
    assert.equal((await c.query("delete from customers where id = 4")).rowCount, 1);
    await c.end();
    await direct.query("insert into customers (id, email) values (4, 'barbara@example.com')");
  });

  it("binds extended-protocol statements to their parameter values", async () => {
    const c = await agent("agent-1", ["agents"], "defer");
    await assert.rejects(c.query("delete from customers where id = $1", [2]), pgError("PX001"));
    const a = await pending((x) => x.rule === "deletes" && x.operation.display.includes("$1"));
    assert.equal((await decide("approve", a.id, "sec-1")).code, 0);
    await assert.rejects(c.query("delete from customers where id = $1", [1]), pgError("PX001"));
    assert.equal((await c.query("delete from customers where id = $1", [2])).rowCount, 1);
    await c.end();
    await direct.query("insert into customers (id, email) values (2, 'grace@example.org')");
  });

  it("refuses a self-approval, even from a member of the approver group", async () => {
    const c = await agent("sec-agent", ["agents", "security"], "defer");
    await assert.rejects(c.query("delete from customers where id = 1"), pgError("PX001"));
    await c.end();
    const a = await pending((x) => x.requester.sub === "sec-agent");
    const r = await decide("approve", a.id, "sec-agent");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot decide their own approval \(HTTP 403\)/);
    assert.equal(gw.gw.approvals.get(a.id)!.state, "pending");
    const outsider = await cli(["approvals", "approve", a.id, "--url", url()], { PORTCULLIS_TOKEN: await gw.token("intern", ["agents"]) });
    assert.equal(outsider.code, 1);
    assert.match(outsider.stderr, /no approval .*HTTP 404/, "neither requester, approver nor admin: not even told it exists");
  });

  it("needs two different approvers when min_approvals is 2", async () => {
    const c = await agent("agent-1", ["agents"], "defer");
    await assert.rejects(c.query("update customers set tier = 'gold' where id = 1"), pgError("PX001"));
    const a = await pending((x) => x.rule === "two-person");
    const first = await decide("approve", a.id, "sec-1");
    assert.match(first.stdout, /recorded: 1 of 2 approvals/);
    const again = await decide("approve", a.id, "sec-1");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already decided/);
    await assert.rejects(c.query("update customers set tier = 'gold' where id = 1"), pgError("PX001"));
    const second = await decide("approve", a.id, "sec-2");
    assert.match(second.stdout, /approved/);
    assert.equal((await c.query("update customers set tier = 'gold' where id = 1")).rowCount, 1);
    await c.end();
  });

  it("keeps the session's later traffic behind a held statement, and resumes when it is approved", async (t) => {
    const sql = postgres({ ...gw.clientConfig(await gw.token("agent-6", ["agents"])), username: "agent", max: 1 });
    const order: string[] = [];
    const held = sql`update customers set tier = 'silver' where id = 3`.then(() => order.push("held"));
    const behind = sql`select 42 as n`.then(() => order.push("behind"));
    const a = await pending((x) => x.requester.sub === "agent-6");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(order, [], "the pipelined select waits behind the held update");
    gw.gw.approvals.decide(a.id, { sub: "sec-1", groups: ["security"], iss: "dev", exp: 0, run: {} }, "approve");
    const t0 = performance.now();
    gw.gw.approvals.decide(a.id, { sub: "sec-2", groups: ["security"], iss: "dev", exp: 0, run: {} }, "approve");
    await held;
    t.diagnostic(`held statement completed ${(performance.now() - t0).toFixed(1)} ms after the approval`);
    await behind;
    assert.deepEqual(order, ["held", "behind"]);
    await sql.end();
  });

  it("cancels a held approval when its identity is revoked, and ends the session with PX003", async () => {
    const c = await agent("agent-7");
    c.on("error", () => {});
    const held = c.query("delete from customers where id = 6").then(() => assert.fail("ran"), (e: { code?: string }) => e.code);
    const a = await pending((x) => x.requester.sub === "agent-7");
    gw.gw.containment.revoke({ kind: "subject", value: "agent-7", reason: "test", by: "responder" });
    assert.equal(await held, "PX003");
    for (let i = 0; i < 100 && gw.gw.approvals.get(a.id)!.state === "pending"; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(gw.gw.approvals.get(a.id)!.state, "cancelled");
    assert.ok((await customerIds()).includes(6));
  });

  it("cancels the approval when the client cancels a held statement", async () => {
    const sql = postgres({ ...gw.clientConfig(await gw.token("agent-3", ["agents"])), username: "agent", max: 1 });
    const q = sql`delete from customers where id = 6`;
    const settled = q.then(() => undefined, (e: { code?: string }) => e.code);
    const a = await pending((x) => x.requester.sub === "agent-3");
    q.cancel();
    assert.equal(await settled, "57014");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(gw.gw.approvals.get(a.id)!.state, "cancelled");
    await sql.end();
  });

  it("notifies a webhook (signed) and takes decisions from Slack's signed interactivity callback", async () => {
    const c = await agent("agent-4", ["agents"], "defer");
    await assert.rejects(c.query("delete from customers where id = 6"), pgError("PX001"));
    await c.end();
    const a = await pending((x) => x.requester.sub === "agent-4");
    const until = Date.now() + 10_000;
    while (!hooked.some((h) => (h.body.approval as { id?: string } | undefined)?.id === a.id) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const note = hooked.find((h) => (h.body.approval as { id?: string } | undefined)?.id === a.id)!;
    assert.equal(note.body.event, "approval_requested");
    assert.equal(note.signatureOk, true);
    assert.ok(!JSON.stringify(note.body).includes("onceKey"));
    const slackMsg = hooked.find((h) => JSON.stringify(h.body).includes(a.id) && Array.isArray(h.body.blocks));
    assert.ok(slackMsg, "a Slack message with buttons was posted");

    const post = (body: string, ts: number, secret = SLACK_SECRET) => fetch(`${url()}/api/slack/interactivity`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`,
      },
      body,
    });
    const form = (user: string, actionId: string) => `payload=${encodeURIComponent(JSON.stringify({ type: "block_actions", user: { id: user }, actions: [{ block_id: "portcullis_approval", action_id: actionId, value: a.id }] }))}`;
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await post(form("U0SEC1", "approve"), now, "wrong-secret")).status, 401);
    assert.equal((await post(form("U0SEC1", "approve"), now - 600)).status, 401, "outside the replay window");
    assert.equal((await post(form("U0NOBODY", "approve"), now)).status, 403, "unmapped Slack user");
    assert.equal((await post(form("U0AGENT", "approve"), now)).status, 403, "a Slack user mapped to the requester");
    assert.equal(gw.gw.approvals.get(a.id)!.state, "pending");
    const ok = await post(form("U0SEC1", "approve"), now);
    assert.equal(ok.status, 200);
    assert.equal(gw.gw.approvals.get(a.id)!.state, "approved");
  });

  it("e-mails each approver one-time links that decide only after the approver signs in", async () => {
    const c = await agent("agent-5", ["agents"], "defer");
    await assert.rejects(c.query("delete from customers where id = 6"), pgError("PX001"));
    await c.end();
    const a = await pending((x) => x.requester.sub === "agent-5");
    const until = Date.now() + 10_000;
    const mine = () => mails.filter((m) => m.includes(a.id));
    while (mine().length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const [toAlice, toBob] = ["alice@example.com", "bob@example.com"].map((to) => mine().find((m) => new RegExp(`^To: ${to}`, "m").test(m))!);
    assert.ok(toAlice && toBob, "one mail per recipient");
    const link = (mail: string, action: string) => {
      const m = new RegExp(`(http://[^\\s]+/approvals/${a.id}/${action}\\?code=[A-Za-z0-9_%-]+)`).exec(mail.replace(/=\r?\n/g, ""));
      return m![1]!.replace(/=3D/g, "=");
    };
    const aliceApprove = link(toAlice, "approve");
    assert.notEqual(aliceApprove, link(toBob, "approve"), "links are per recipient");
    const pageRes = await fetch(aliceApprove);
    assert.equal(pageRes.status, 200);
    assert.match(await pageRes.text(), /delete from customers where id = 6/);
    const code = new URL(aliceApprove).searchParams.get("code")!;
    const submit = (token: string, withCode = code) => fetch(aliceApprove.split("?")[0]!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ code: withCode, token }).toString(),
    });
    assert.equal((await submit("not-a-token")).status, 401, "the link alone decides nothing");
    assert.equal((await submit(await gw.token("sec-1", ["security"]), "forged-code")).status, 410);
    assert.equal((await submit(await gw.token("agent-5", ["security"]))).status, 403, "not by the requester");
    assert.equal(gw.gw.approvals.get(a.id)!.state, "pending");
    assert.equal((await submit(await gw.token("sec-1", ["security"]))).status, 200);
    assert.equal(gw.gw.approvals.get(a.id)!.state, "approved");
    assert.equal((await submit(await gw.token("sec-2", ["security"]))).status, 410, "a link works once");
    assert.equal((await fetch(aliceApprove)).status, 410);
  });

  it("audits every step", () => {
    gw.gw.journal.flush();
    const types = gw.gw.store.readAudit(0, 100_000).map((r) => r.type);
    for (const t of ["approval_requested", "approval_vote", "approval_decided", "grant_used"]) assert.ok(types.includes(t), t);
  });

  it("refuses the admin API without a valid token", async () => {
    assert.equal((await fetch(`${url()}/api/approvals`)).status, 401);
    assert.equal((await fetch(`${url()}/api/approvals`, { headers: { authorization: "Bearer nope" } })).status, 401);
    const intern = await fetch(`${url()}/api/approvals`, { headers: { authorization: `Bearer ${await gw.token("intern", ["agents"])}` } });
    assert.deepEqual(await intern.json(), { approvals: [] }, "a caller who requested nothing and approves nothing sees nothing");
  });
});
