/** Alerts: channels by kind, signatures, de-duplication with a suppressed count, audit; new-client-address detection. */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { SMTPServer } from "smtp-server";
import type { AuditEntry } from "../../src/audit/chain.js";
import { signBody } from "../../src/audit/webhook.js";
import { parseConfig } from "../../src/config/load.js";
import { type Alert, AlertBus } from "../../src/core/alerts.js";
import { Detections } from "../../src/core/detections.js";
import { createLogger } from "../../src/core/logger.js";
import { GatewayMetrics } from "../../src/core/metrics.js";
import type { Session } from "../../src/core/sessions.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

const logger = createLogger("silent");

describe("alerts", () => {
  let http: Server;
  let smtp: SMTPServer;
  const posts: { path: string; body: Record<string, unknown>; signatureOk: boolean }[] = [];
  const mails: string[] = [];
  let base: string;
  let smtpPort: number;

  before(async () => {
    http = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => { body += c.toString(); });
      req.on("end", () => {
        const ts = String(req.headers["x-portcullis-timestamp"]);
        posts.push({ path: req.url ?? "", body: JSON.parse(body) as Record<string, unknown>, signatureOk: req.headers["x-portcullis-signature"] === signBody("s3cret", ts, body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    smtp = new SMTPServer({ authOptional: true, disabledCommands: ["STARTTLS"], logger: false, onData(stream, _s, done) {
      let raw = "";
      stream.on("data", (c: Buffer) => { raw += c.toString(); });
      stream.on("end", () => { mails.push(raw); done(); });
    } });
    await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
    smtpPort = (smtp.server.address() as { port: number }).port;
  });
  after(() => {
    http.close();
    smtp.close();
  });

  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond(), "timed out");
  };

  it("sends each alert to the channels that listen for it, de-duplicated per subject, and audits every one", async () => {
    const config = parseConfig({
      gateway: {},
      identity: { dev_issuer: true },
      alerts: [
        { on: ["budget_exceeded"], webhook: { url: `${base}/hook`, secret: "s3cret" }, dedupe: "1h" },
        { on: ["budget_exceeded", "session_killed"], slack: { webhook_url: `${base}/slack` }, dedupe: "1h" },
        { on: ["session_killed"], email: { smtp: { host: "127.0.0.1", port: smtpPort, require_tls: false }, from: "pc@example.com", to: ["soc@example.com"] } },
      ],
    }, "/nonexistent/portcullis.yaml");
    const audited: AuditEntry[] = [];
    const bus = new AlertBus({ logger, metrics: new GatewayMetrics(), channels: () => config.alerts, audit: (e) => audited.push(e) });
    const seen: Alert[] = [];
    bus.on("alert", (a: Alert) => seen.push(a));
    for (let i = 0; i < 5; i++) bus.raise("budget_exceeded", { sub: "a", rows: i }, "rows a");
    bus.raise("budget_exceeded", { sub: "b" }, "rows b");
    bus.raise("session_killed", { session: "s1" }, "s1");
    await until(() => posts.length >= 5 && mails.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    const hooks = posts.filter((p) => p.path === "/hook");
    assert.deepEqual(hooks.map((h) => h.body.subject), ["rows a", "rows b"], "repeats of the same subject are suppressed");
    assert.ok(hooks.every((h) => h.signatureOk));
    const slack = posts.filter((p) => p.path === "/slack");
    assert.equal(slack.length, 3);
    assert.match(String(slack[0]!.body.text), /budget_exceeded \(rows a\)/);
    assert.match(mails[0]!, /Subject: \[portcullis\] alert: session_killed/);
    assert.equal(seen.length, 7, "every alert is raised, whatever the channels do");
    assert.equal(audited.filter((e) => e.type === "alert").length, 7);
  });

  it("tells how many were suppressed once the window has passed", async () => {
    posts.length = 0;
    const config = parseConfig({ gateway: {}, identity: { dev_issuer: true }, alerts: [{ on: ["deny"], webhook: { url: `${base}/hook`, secret: "s3cret" }, dedupe: "1s" }] }, "/x/p.yaml");
    const bus = new AlertBus({ logger, metrics: new GatewayMetrics(), channels: () => config.alerts, audit: () => {} });
    bus.raise("deny", { n: 1 }, "loop");
    bus.raise("deny", { n: 2 }, "loop");
    bus.raise("deny", { n: 3 }, "loop");
    await new Promise((r) => setTimeout(r, 1100));
    bus.raise("deny", { n: 4 }, "loop");
    await until(() => posts.length >= 2);
    assert.deepEqual(posts.map((p) => [(p.body.detail as { n: number }).n, p.body.suppressed]), [[1, undefined], [4, 2]]);
  });

  it("new_client_address: an identity seen before, from an address it has not used", () => {
    const store = new SqliteStore(":memory:");
    const config = parseConfig({ gateway: {}, identity: { dev_issuer: true } }, "/x/p.yaml");
    const raised: Alert[] = [];
    const bus = new AlertBus({ logger, metrics: new GatewayMetrics(), channels: () => [], audit: () => {} });
    bus.on("alert", (a: Alert) => raised.push(a));
    const d = new Detections(store, bus, () => config, logger);
    const session = (sub: string) => ({ id: `s-${sub}`, principal: { sub, groups: [], iss: "dev", exp: 0, run: {} }, record: { connection: "app" } }) as unknown as Session;
    d.sessionOpened(session("a"), "10.0.0.1");
    d.sessionOpened(session("a"), "10.0.0.1");
    assert.equal(raised.length, 0, "a first sighting, and a known address, are not news");
    d.sessionOpened(session("a"), "203.0.113.9");
    assert.equal(raised.length, 1);
    assert.equal(raised[0]!.kind, "new_client_address");
    assert.equal(raised[0]!.detail.address, "203.0.113.9");
    d.sessionOpened(session("b"), "203.0.113.9");
    assert.equal(raised.length, 1, "another identity's first sighting is not news either");
  });
});
