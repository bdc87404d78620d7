/**
 * Fail closed: when the audit store cannot be written (here: full, through the store size cap, which
 * makes SQLite fail exactly as on a full disk), statements are refused with PX005 instead of being
 * forwarded, new sessions are refused, readiness drops and an alert is raised; once the store can
 * be written again, traffic resumes by itself and the outage is in the audit log.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { stringify } from "yaml";
import { verifyAudit } from "../../src/audit/verify.js";
import { publicKeyFromDataDir } from "../../src/audit/signing.js";
import type { Alert } from "../../src/core/alerts.js";
import { loadConfig } from "../../src/config/load.js";
import { DevIssuer } from "../../src/identity/dev-issuer.js";
import { type Gateway, startGateway } from "../../src/server.js";
import { connectDirect, UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, type TestTarget } from "../support/gateway.js";
import { METRICS_TOKEN, scrape } from "../support/metrics.js";

describe("audit store unwritable: fail closed, then resume", () => {
  let target: TestTarget;
  let dir: string;
  let file: string;
  let gw: Gateway;
  let direct: pg.Client;
  let token: string;
  const alerts: Alert[] = [];
  let base: Record<string, unknown>;

  const writeConfig = (audit: Record<string, unknown>) => writeFileSync(file, stringify({ ...base, audit }));
  const connect = async () => {
    const c = new pg.Client({ host: gw.addresses.postgres!.host, port: gw.addresses.postgres!.port, user: "agent", password: token, database: "app" });
    await c.connect();
    return c;
  };
  const marks = async () => (await direct.query<{ n: number }>("select n from marks order by n")).rows.map((r) => r.n);

  before(async () => {
    target = await startTarget();
    direct = await connectDirect(target);
    await direct.query("create table marks (n int primary key)");
    dir = mkdtempSync(join(tmpdir(), "pc-failclosed-"));
    file = join(dir, "portcullis.yaml");
    base = {
      gateway: { postgres: "127.0.0.1:0", http: "127.0.0.1:0", data_dir: join(dir, "data"), log_level: "silent", metrics_token: METRICS_TOKEN },
      identity: { dev_issuer: true },
      connections: [{
        name: "app", type: "postgres",
        target: { host: target.pg.host, port: target.pg.port, database: "app", tls: "disable" },
        credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD },
        access: ["agents"],
      }],
    };
    writeConfig({});
    gw = await startGateway(loadConfig(file));
    gw.alerts.on("alert", (a: Alert) => alerts.push(a));
    token = await (await DevIssuer.open(join(dir, "data"))).issue({ sub: "agent-1", groups: ["agents"], ttlSeconds: 600 });
  });

  after(async () => {
    await gw?.stop();
    await direct?.end();
    await target?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses statements with PX005 instead of forwarding them, and resumes by itself", async () => {
    const client = await connect();
    for (let n = 1; n <= 3; n++) await client.query("insert into marks values ($1)", [n]);

    // Cap the store at its current size: the next pages it needs cannot be had, as on a full disk.
    const probe = new BetterSqlite3(join(dir, "data", "portcullis.db"), { readonly: true });
    const size = (probe.pragma("page_count", { simple: true }) as number) * (probe.pragma("page_size", { simple: true }) as number);
    probe.close();
    writeConfig({ max_store_size: size });
    assert.deepEqual(await gw.reload(), { ok: true });

    let refused: number | undefined;
    for (let n = 100; n < 100_000 && refused === undefined; n++) {
      try {
        await client.query("insert into marks values ($1)", [n]);
      } catch (err) {
        const e = err as { code?: string; message: string };
        assert.equal(e.code, "PX005", e.message);
        assert.match(e.message, /audit log unavailable/);
        refused = n;
      }
    }
    assert.ok(refused !== undefined, "the store never filled up");
    assert.ok(!(await marks()).includes(refused), "a refused statement must not reach the target");

    // The session survives; later statements are refused at once, without reaching the target.
    for (const n of [refused + 1, refused + 2]) {
      await assert.rejects(client.query("insert into marks values ($1)", [n]), (e: { code?: string }) => e.code === "PX005");
    }
    await assert.rejects(client.query({ text: "insert into marks values ($1)", values: [refused + 3], name: "ins" }), (e: { code?: string }) => e.code === "PX005");
    const now = await marks();
    for (const n of [refused + 1, refused + 2, refused + 3]) assert.ok(!now.includes(n), `${n} reached the target`);

    // New sessions are refused too (their opening is audited first), with a clear message.
    await assert.rejects(connect(), (e: { code?: string; message: string }) => e.code === "PX005" && /audit/.test(e.message));
    const ready = await fetch(`http://127.0.0.1:${gw.addresses.http!.port}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { checks: { audit: boolean } }).checks.audit, false);
    const metrics = await scrape(gw.addresses.http!.port);
    assert.match(metrics, /^portcullis_audit_available 0$/m);
    assert.equal(alerts.filter((a) => a.kind === "audit_unavailable").length, 1);

    // Space again: traffic resumes without a restart, on the same session.
    writeConfig({});
    await gw.reload();
    const resumedAt = Date.now();
    let resumed = false;
    while (!resumed && Date.now() - resumedAt < 15_000) {
      try {
        await client.query("insert into marks values ($1)", [50_000]);
        resumed = true;
      } catch (err) {
        assert.equal((err as { code?: string }).code, "PX005");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(resumed, "traffic did not resume");
    assert.ok((await marks()).includes(50_000));
    const again = await connect();
    await again.query("select 1");
    await again.end();
    await client.end();

    gw.journal.flush();
    const outage = gw.store.readAudit(0, 100_000).filter((r) => r.type === "audit_unavailable").map((r) => JSON.parse(r.data) as { refused_operations: number; error: string });
    assert.equal(outage.length, 1);
    assert.ok(outage[0]!.refused_operations >= 3, JSON.stringify(outage[0]));
    assert.match(outage[0]!.error, /full/i);
    const key = publicKeyFromDataDir(join(dir, "data"));
    const verdict = verifyAudit({ read: (a, l) => gw.store.readAudit(a, l), sources: [{ origin: "store", checkpoints: gw.store.listCheckpoints() }], ...(key ? { publicKey: key } : {}) });
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
  });
});
