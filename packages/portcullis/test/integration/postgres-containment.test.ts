/**
 * Containment end to end, against a real PostgreSQL: revoking an identity ends its running
 * pgbench within a second while another identity's work carries on; a revoked token cannot
 * reconnect and its use raises an alert naming the client address; a rows budget stops a
 * 100 000-row SELECT at the budget with PX004 and a signed alert; freezing a connection ends only
 * the sessions to that target; single sessions can be killed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { signBody } from "../../src/audit/webhook.js";
import { connectDirect, UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { libpqEnv, requirePostgresClient } from "../support/clients.js";
import { cli } from "../support/cli.js";

const SECRET = "alert-secret-for-tests";

interface Received {
  alert: string;
  subject: string;
  detail: Record<string, unknown>;
  signatureOk: boolean;
}

describe("containment", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let hook: Server;
  const alerts: Received[] = [];
  const url = () => `http://127.0.0.1:${gw.httpPort}`;
  const asAdmin = async () => ({ PORTCULLIS_TOKEN: await gw.token("responder", ["security"]) });

  const waitFor = async <T>(fn: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== undefined) return v;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const client = async (sub: string, connection = "app") => {
    const c = new pg.Client(gw.clientConfig(await gw.token(sub, ["agents"]), connection));
    c.on("error", () => {});
    await c.connect();
    return c;
  };

  before(async () => {
    target = await startTarget();
    const direct = await connectDirect(target);
    await direct.query("create table customers as select g as id, 'customer-' || g as name from generate_series(1, 100000) g");
    await direct.end();
    hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        const ts = String(req.headers["x-portcullis-timestamp"]);
        const b = JSON.parse(body) as { alert: string; subject: string; detail: Record<string, unknown> };
        alerts.push({ ...b, signatureOk: req.headers["x-portcullis-signature"] === signBody(SECRET, ts, body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const pgTarget = { host: target.pg.host, port: target.pg.port, database: "app", tls: "disable" };
    const credentials = { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD };
    gw = await startTestGateway({
      target,
      connections: [
        { name: "app", type: "postgres", target: pgTarget, credentials, access: ["agents"] },
        { name: "reports", type: "postgres", target: pgTarget, credentials, access: ["agents"] },
      ],
      overrides: {
        budgets: [{ name: "reader-rows", subjects: ["bulk-reader"], rows_per_hour: 1000 }],
        alerts: [{ on: ["budget_exceeded", "revoked_identity_used", "session_killed", "bulk_read"], webhook: { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/alerts`, secret: SECRET } }],
        detections: { bulk_read_rows: 50_000 },
        identity: { dev_issuer: true, admins: ["security"], expiry_grace: "5s" },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    hook?.close();
  });

  it("revoke --subject ends a running pgbench within a second; the token cannot reconnect; others carry on", async (t) => {
    const script = join(gw.dataDir, "select.sql");
    writeFileSync(script, "select count(*) from customers where id < 100;\n");
    const token = await gw.token("compromised-agent", ["agents"]);
    const bench = spawn(requirePostgresClient("pgbench"), ["-n", "-T", "60", "-c", "2", "-f", script], {
      env: libpqEnv({ host: gw.host, port: gw.port, user: "agent", password: token, database: "app" }),
    });
    let benchErr = "";
    bench.stderr.on("data", (c: Buffer) => { benchErr += c.toString(); });
    let exitedAt = 0;
    const benchExit = new Promise<number>((r) => bench.on("exit", (code) => { exitedAt = Date.now(); r(code ?? -1); }));

    // Someone else's session, busy the whole time.
    const bystander = await client("bystander");
    let bystanderOk = 0;
    let bystanderFailed: unknown;
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          await bystander.query("select 1");
          bystanderOk++;
        } catch (err) {
          bystanderFailed = err;
          return;
        }
      }
    })();

    await waitFor(() => (gw.gw.context.sessions.list().filter((s) => s.principal.sub === "compromised-agent" && s.stats.operations > 20).length === 2 ? true : undefined), "pgbench to be running");
    const t0 = performance.now();
    const r = await cli(["revoke", "--subject", "compromised-agent", "--reason", "token leaked", "--url", url()], await asAdmin());
    const tCli = performance.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /revoked subject compromised-agent .*; 2 live session\(s\) ended/);
    await waitFor(() => (gw.gw.context.sessions.list().some((s) => s.principal.sub === "compromised-agent") ? undefined : true), "sessions to end", 5000);
    const code = await benchExit;
    gw.gw.journal.flush();
    const revokedAt = gw.gw.store.readAudit(0, 1_000_000).find((x) => x.type === "revoked")!.at;
    const latency = exitedAt - revokedAt;
    t.diagnostic(`pgbench (2 clients) exited ${latency} ms after the gateway recorded the revocation; the revoke CLI took ${tCli.toFixed(0)} ms in all (node start included)`);
    assert.ok(latency < 5000, `pgbench still running ${latency} ms after the revocation`);
    assert.notEqual(code, 0);
    assert.match(benchErr, /PX003|identity revoked|server closed the connection/i);

    // The same token cannot come back; the attempt is an alert with the client's address.
    await assert.rejects(async () => {
      const c = new pg.Client(gw.clientConfig(token));
      await c.connect();
    }, (e: { code?: string; message: string }) => e.code === "PX003" && /identity revoked/.test(e.message) && !/leaked/.test(e.message));
    const used = await waitFor(() => alerts.find((a) => a.alert === "revoked_identity_used"), "revoked_identity_used alert");
    assert.equal(used.signatureOk, true);
    assert.match(String(used.detail.client), /^127\.0\.0\.1:\d+$/);
    assert.equal(used.detail.sub, "compromised-agent");

    running = false;
    await loop;
    assert.equal(bystanderFailed, undefined, "the bystander's session must carry on");
    const before = bystanderOk;
    await bystander.query("select 1");
    assert.ok(before > 0);
    await bystander.end();

    // Listed and lifted through the CLI.
    const list = await cli(["revocations", "list", "--url", url(), "--json"], await asAdmin());
    const revs = JSON.parse(list.stdout) as { id: string; value: string }[];
    const rev = revs.find((x) => x.value === "compromised-agent")!;
    assert.ok(rev);
    assert.equal((await cli(["revocations", "lift", rev.id, "--url", url()], await asAdmin())).code, 0);
    const back = new pg.Client(gw.clientConfig(token));
    await back.connect();
    await back.end();
  });

  it("stops a 100 000-row SELECT at a 1000 rows/hour budget with PX004, and alerts (signed)", async () => {
    const c = await client("bulk-reader");
    const seen: number[] = [];
    const stream = new Promise<{ code?: string; message: string }>((resolve) => {
      const q = c.query(new pg.Query("select * from customers"));
      q.on("row", (row: { id: number }) => seen.push(row.id));
      q.on("error", (e: { code?: string; message: string }) => resolve(e));
      q.on("end", () => resolve({ message: "completed" }));
    });
    const err = await stream;
    assert.equal(err.code, "PX004", err.message);
    assert.match(err.message, /budget reader-rows exceeded/);
    assert.ok(seen.length <= 1000, `${seen.length} rows left`);
    const alert = await waitFor(() => alerts.find((a) => a.alert === "budget_exceeded"), "budget alert");
    assert.equal(alert.signatureOk, true);
    assert.equal(alert.detail.budget, "reader-rows");
    assert.equal(alert.detail.sub, "bulk-reader");
    // The budget is spent for the hour: a new session's statement is refused before it runs.
    const again = await client("bulk-reader");
    await assert.rejects(again.query("select id from customers limit 1"), (e: { code?: string }) => e.code === "PX004");
    await again.end().catch(() => {});
  });

  it("alerts on a bulk read over the threshold", async () => {
    const c = await client("analyst");
    const r = await c.query("select id from customers");
    assert.equal(r.rowCount, 100_000);
    await c.end();
    const a = await waitFor(() => alerts.find((x) => x.alert === "bulk_read"), "bulk_read alert");
    assert.equal(a.detail.rows, 100_000);
    assert.equal(a.detail.sub, "analyst");
  });

  it("freezing a connection ends its sessions only, and refuses new ones until unfrozen", async () => {
    const onApp = await client("freeze-a", "app");
    const onReports = await client("freeze-b", "reports");
    const ended = new Promise<{ code?: string }>((r) => onApp.on("error", (e: Error & { code?: string }) => r(e)));
    const f = await cli(["freeze", "--connection", "app", "--reason", "incident 42", "--url", url()], await asAdmin());
    assert.equal(f.code, 0, f.stderr);
    assert.equal((await ended).code, "PX003");
    assert.equal((await onReports.query("select 1 as ok")).rows[0].ok, 1);
    await assert.rejects(client("freeze-c", "app"), (e: { code?: string; message: string }) => e.code === "PX003" && /frozen/.test(e.message));
    assert.equal((await cli(["unfreeze", "--connection", "app", "--url", url()], await asAdmin())).code, 0);
    const again = await client("freeze-c", "app");
    await again.query("select 1");
    await again.end();
    await onReports.end();
  });

  it("lets a statement in flight finish within the expiry grace, then ends the session", async () => {
    const c = new pg.Client(gw.clientConfig(await gw.token("short-lived", ["agents"], 2)));
    const ended = new Promise<{ code?: string }>((r) => c.on("error", (e: Error & { code?: string }) => r(e)));
    await c.connect();
    // Expires two seconds in, while this statement runs; the grace lets it finish.
    const r = await c.query("select pg_sleep(3.5), 'finished' as status");
    assert.equal(r.rows[0].status, "finished");
    assert.equal((await ended).code, "PX003");
  });

  it("kills one session by id", async () => {
    const victim = await client("kill-me");
    const other = await client("keep-me");
    const id = gw.gw.context.sessions.list().find((s) => s.principal.sub === "kill-me")!.id;
    const ended = new Promise<{ code?: string }>((r) => victim.on("error", (e: Error & { code?: string }) => r(e)));
    const r = await cli(["sessions", "kill", id, "--reason", "suspicious", "--url", url()], await asAdmin());
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await ended).code, "57P01");
    await other.query("select 1");
    await other.end();
    const intern = await cli(["sessions", "kill", id, "--url", url()], { PORTCULLIS_TOKEN: await gw.token("intern", ["agents"]) });
    assert.equal(intern.code, 1);
    assert.match(intern.stderr, /admin/);
    gw.gw.journal.flush();
    assert.equal(gw.gw.store.getSession(id)!.endReason, "killed: suspicious");
  });
});
