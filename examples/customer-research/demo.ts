/**
 * `portcullis demo`: the incident of the SPEC's opening, staged on this machine and narrated.
 *
 * A research agent (a LangGraph graph) does its normal work through Portcullis with a token from a
 * real OIDC provider; then a contractor's leaked token pulls customers in bulk: the export waits
 * for approval, the bulk read hits its budget, a DROP is denied, alerts fire; the responder revokes
 * the contractor and its live session dies; the session is replayed and the audit chain exported
 * and verified. Everything runs on loopback and is removed at the end.
 */
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { LocalPostgres, type Gateway, DevIssuer, parseConfig, publicKeyFromDataDir, renderFrames, loadRecording, sampleSchemaSql, startGateway, verifyAudit } from "portcullis";
import { clientCredentials, devIssuer, portcullisFetch, portcullisPool } from "@portcullis/langgraph";
// The same oidc-provider setup the test suite uses: a real provider issuing client-credentials JWTs.
import { RESOURCE, startOidcProvider } from "../../packages/portcullis/test/support/oidc.js";
import { buildResearchGraph, question, researchScript } from "./graph.js";

const t0 = performance.now();
const out = (s = "") => process.stdout.write(`${s}\n`);
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
const step = (n: number, title: string) => out(`\n[${n}/8] ${title}  (${elapsed()})`);
const ok = (s: string) => out(`      ✓ ${s}`);
const note = (s: string) => out(`        ${s}`);
const summary: string[] = [];

const cleanups: (() => Promise<unknown> | unknown)[] = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
}
process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as { port: number }).port)));

async function main(): Promise<void> {
  out("Portcullis demo: a leaked agent token, caught and contained. Everything runs locally and is removed at the end.");

  step(1, "A throwaway PostgreSQL with fake customers, a billing API, an OIDC provider");
  const dbPassword = "demo-app-password";
  const postgres = await LocalPostgres.start({ users: [{ name: "app_reader", password: dbPassword }], databases: [{ name: "app", owner: "app_reader" }] });
  cleanups.push(() => postgres.stop());
  const seed = new pg.Client(postgres.clientConfig({ name: "app_reader", password: dbPassword }, "app"));
  await seed.connect();
  await seed.query(sampleSchemaSql(5000));
  await seed.query("alter table customers add column city text; update customers set city = (array['Springfield', 'Shelbyville', 'Ogdenville'])[1 + id % 3]");
  await seed.end();
  ok(`PostgreSQL ${postgres.port}: 5000 customers with names, emails, SSNs, phones; 5000 payments with card numbers`);
  const billing = createServer((req, res) => {
    const customer = new URL(req.url ?? "/", "http://x").searchParams.get("customer");
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ customer, invoices: [{ id: `inv-${customer}-1`, amount: 129.5, card: "4111 1111 1111 1111", contact: "billing-contact@example.com" }] }));
  });
  const billingPort = await listen(billing);
  cleanups.push(() => new Promise((r) => billing.close(r)));
  ok(`billing API on 127.0.0.1:${billingPort}`);
  const idp = await startOidcProvider({ groups: ["agents"], clientId: "research-agent", ttlSeconds: 600 });
  cleanups.push(() => idp.close());
  ok(`OIDC provider (oidc-provider) at ${idp.issuer}`);
  const alerts: { alert: string; detail: Record<string, unknown> }[] = [];
  const alertHook = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => { body += c.toString(); });
    req.on("end", () => { alerts.push(JSON.parse(body) as { alert: string; detail: Record<string, unknown> }); res.writeHead(204).end(); });
  });
  const hookPort = await listen(alertHook);
  cleanups.push(() => new Promise((r) => alertHook.close(r)));

  step(2, "Portcullis in front of both, holding the real credentials");
  const dataDir = mkdtempSync(join(tmpdir(), "portcullis-demo-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = parseConfig({
    gateway: { postgres: "127.0.0.1:0", http: "127.0.0.1:0", data_dir: dataDir, log_level: "silent" },
    identity: { dev_issuer: true, admins: ["security"], issuers: [{ issuer: idp.issuer, audience: "portcullis", algorithms: ["RS256"] }] },
    connections: [
      { name: "customers", type: "postgres", target: { host: "127.0.0.1", port: postgres.port, database: "app", tls: "disable" }, credentials: { username: "app_reader", password: dbPassword }, access: ["agents", "contractors"] },
      { name: "billing", type: "http", target: { url: `http://127.0.0.1:${billingPort}` }, access: ["agents"] },
    ],
    rules: [
      { name: "no-schema-changes", when: { sql: { statements: ["ddl", "truncate", "dynamic"] } }, action: "deny" },
      { name: "bulk-export", connections: ["customers"], when: { sql: { statements: ["copy_out"] } }, action: "approve", approvers: ["security"] },
    ],
    masking: [
      { connections: ["customers"], columns: ["customers.email", "customers.ssn", "customers.phone", "payments.card_number"], strategy: "redact" },
      { detectors: ["email", "credit_card", "us_ssn", "phone"], strategy: "redact" },
    ],
    budgets: [{ name: "contractor-rows", groups: ["contractors"], rows_per_hour: 1000 }],
    alerts: [{ on: ["approval_requested", "budget_exceeded", "deny", "revoked_identity_used", "session_killed", "bulk_read"], webhook: { url: `http://127.0.0.1:${hookPort}/alerts`, secret: "demo-alert-secret" }, dedupe: "1m" }],
    audit: { checkpoint_every: 10 },
  }, join(dataDir, "portcullis.yaml"));
  const gw: Gateway = await startGateway(config);
  cleanups.push(() => gw.stop());
  const pgAddr = gw.addresses.postgres!;
  const http = `http://127.0.0.1:${gw.addresses.http!.port}`;
  ok(`PostgreSQL listener ${pgAddr.host}:${pgAddr.port}, HTTP ${http}; agents carry only short-lived tokens`);
  note("rules: schema changes denied; bulk export (COPY) needs a security approver; contractors: 1000 rows/hour");

  step(3, "The research agent's normal work (LangGraph, token from the OIDC provider)");
  const tokens = clientCredentials({ tokenUrl: `${idp.issuer}/token`, clientId: "research-agent", clientSecret: "agent-1-secret-that-is-long-enough", resource: RESOURCE, scope: "gateway" });
  const db = portcullisPool({ host: pgAddr.host, port: pgAddr.port, connection: "customers", tokens, graphId: "customer-research" });
  cleanups.push(() => db.end());
  const billingFetch = portcullisFetch({ gateway: http, connection: "billing", tokens, graphId: "customer-research" });
  const graph = buildResearchGraph({ db, billing: billingFetch, approvals: { gateway: http, tokens } }, researchScript("Springfield"));
  const result = await graph.invoke(question("Springfield"), { configurable: { thread_id: "research-thread-1", run_id: "run-001" } });
  const toolOutput = result.messages.filter((m) => m.getType() === "tool").map((m) => String(m.content)).join("\n");
  const firstRow = /\{"id":1[^}]*\}|\{"id":\d+,"name":[^}]*\}/.exec(toolOutput)?.[0] ?? "";
  ok(`graph answered: "${String(result.messages.at(-1)!.content)}"`);
  note(`a row as the model saw it: ${firstRow}`);
  const leaked = /@example\.com|4111 1111/.test(toolOutput);
  summary.push(`research graph completed; PII masked in everything the model saw: ${leaked ? "NO" : "yes"}`);

  step(4, "A contractor's leaked token pulls customers in bulk");
  const issuer = await DevIssuer.open(dataDir);
  const contractorToken = await issuer.issue({ sub: "contractor-7", groups: ["contractors"], ttlSeconds: 3600 });
  const contractor = new pg.Client({ host: pgAddr.host, port: pgAddr.port, database: "customers", user: "contractor", password: contractorToken, options: "-c portcullis.approval=defer" });
  contractor.on("error", () => undefined);
  await contractor.connect();
  const exportErr = await contractor.query("copy customers to stdout").then(() => undefined, (e: { code?: string; message: string }) => e);
  const approvalId = /approval id ([0-9a-f-]{36})/.exec(exportErr?.message ?? "")?.[1];
  ok(`COPY customers TO STDOUT held for approval: ${exportErr?.code} (approval ${approvalId})`);
  let rows = 0;
  const bulkErr = await new Promise<{ code?: string; message: string } | undefined>((resolve) => {
    const q = contractor.query(new pg.Query("select * from customers"));
    q.on("row", () => { rows++; });
    q.on("error", (e: { code?: string; message: string }) => resolve(e));
    q.on("end", () => resolve(undefined));
  });
  ok(`SELECT * FROM customers stopped by the budget after ${rows} rows: ${bulkErr?.code ?? "not stopped"}`);
  summary.push(`bulk export held for approval (${exportErr?.code}); bulk read stopped after ${rows} of 5000 rows (${bulkErr?.code})`);
  // The budget ended that session; the contractor reconnects and tries to cover its tracks.
  const again = new pg.Client({ host: pgAddr.host, port: pgAddr.port, database: "customers", user: "contractor", password: contractorToken });
  again.on("error", () => undefined);
  await again.connect();
  const dropErr = await again.query("drop table payments").then(() => undefined, (e: { code?: string; message: string }) => e);
  ok(`DROP TABLE payments: ${dropErr?.message} (${dropErr?.code})`);
  summary.push(`DROP TABLE denied: ${dropErr?.code === "42501" ? "yes" : "NO"}`);

  step(5, "The responder revokes the contractor: its live session dies");
  const ended = new Promise<number>((r) => again.once("error", () => r(performance.now())));
  const tRevoke = performance.now();
  const { killed } = gw.containment.revoke({ kind: "subject", value: "contractor-7", reason: "leaked token, INC-4711", by: "responder" });
  const diedAfter = (await ended) - tRevoke;
  ok(`revoked contractor-7: ${killed} live session(s) ended ${diedAfter.toFixed(0)} ms after the revocation`);
  const retry = await new pg.Client({ host: pgAddr.host, port: pgAddr.port, database: "customers", user: "contractor", password: contractorToken }).connect().then(() => "connected", (e: { code?: string }) => e.code);
  ok(`the same token again: ${retry}`);
  summary.push(`contractor revoked; live session ended in ${diedAfter.toFixed(0)} ms; reconnect refused (${retry})`);
  await new Promise((r) => setTimeout(r, 300));
  const kinds = [...new Set(alerts.map((a) => a.alert))].sort();
  ok(`alerts delivered to the webhook: ${kinds.join(", ")}`);
  summary.push(`alerts delivered: ${kinds.join(", ")}`);

  step(6, "Replay what the contractor did");
  gw.journal.flush();
  const session = gw.store.listSessions({ sub: "contractor-7" }).at(-1)!;
  const frames = renderFrames(session, loadRecording(gw.store, session.id));
  // The transcript, with the 1000 rows that left shortened to their first and last few.
  const lines = frames.map((f) => f.text).join("").split("\n");
  const shown = lines.length > 24 ? [...lines.slice(0, 14), `        … ${lines.length - 22} more rows …`, ...lines.slice(-8)] : lines;
  for (const line of shown) note(line);
  const ops = loadRecording(gw.store, session.id).filter((e) => e.e === "op").length;
  summary.push(`replayed the contractor's first session: ${ops} operations, ended "${session.endReason}"`);

  step(7, "Export the audit log and verify the chain");
  gw.journal.flush();
  const records = gw.store.readAudit(0, 1_000_000);
  const key = publicKeyFromDataDir(dataDir);
  const verdict = verifyAudit({ read: (a, l) => gw.store.readAudit(a, l), sources: [{ origin: "store", checkpoints: gw.store.listCheckpoints() }], ...(key ? { publicKey: key } : {}) });
  // Client-credentials tokens carry no run claims: the run context arrives as the client's hints
  // (with token exchange it would be signed, see docs/langgraph.md).
  const runRecords = records.filter((r) => r.type === "decision" && (JSON.parse(r.data) as { run_hints?: { run_id?: string } }).run_hints?.run_id === "run-001").length;
  ok(`${records.length} records exported; chain ${verdict.ok ? "intact" : `BROKEN: ${verdict.problem}`}; ${verdict.ok ? verdict.checkpoints : 0} signed checkpoints`);
  note(`${runRecords} decisions name the research graph's run run-001, its thread and node`);
  summary.push(`audit chain verified: ${verdict.ok ? `intact, ${verdict.records} records` : "BROKEN"}`);

  step(8, "Cleaning up");
  await contractor.end().catch(() => undefined);
  await cleanup();
  ok("gateway, PostgreSQL, OIDC provider and billing API stopped; temporary files removed");

  out(`\nSummary (${elapsed()})`);
  for (const s of summary) out(`  ✓ ${s}`);
  out("\nWhat you saw: docs/incident-response.md. Run it yourself: npm start, then the tour in README.md.");
}

main().then(() => process.exit(0), async (err: unknown) => {
  process.stderr.write(`portcullis demo failed: ${(err as Error).stack ?? String(err)}\n`);
  await cleanup();
  process.exit(1);
});
