/**
 * The customer-research example graph (examples/customer-research) against a real gateway,
 * PostgreSQL and billing API: it completes with its scripted answer, the data its tools got back
 * is masked, and each statement and request is audited with the graph, thread, run and node.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import type { ToolMessage } from "@langchain/core/messages";
import { Command } from "@langchain/langgraph";
import pg from "pg";
import { buildResearchGraph, question, researchScript } from "../../../examples/customer-research/graph.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../../portcullis/test/support/gateway.js";
// The package as the example uses it (its build), not its sources.
import { type PortcullisFetch, type PortcullisPool, type WithApprovalOptions, devIssuer, portcullisFetch, portcullisPool } from "@portcullis/langgraph";

describe("examples/customer-research", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let billing: Server;
  let db: PortcullisPool;
  let fetchBilling: PortcullisFetch;
  let approvals: WithApprovalOptions;

  before(async () => {
    target = await startTarget();
    const direct = new pg.Client(target.pg.clientConfig({ name: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, "app"));
    await direct.connect();
    await direct.query("create table customers (id int primary key, name text, email text, city text)");
    await direct.query("insert into customers values (1, 'Ada', 'ada@example.com', 'Springfield'), (2, 'Alan', 'alan@example.org', 'Springfield'), (3, 'Grace', 'grace@example.net', 'Shelbyville')");
    await direct.end();
    billing = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ customer: new URL(req.url!, "http://x").searchParams.get("customer"), invoices: [{ id: "inv-1", amount: 120, card: "4111 1111 1111 1111", contact: "ada@example.com" }] }));
    });
    await new Promise<void>((r) => billing.listen(0, "127.0.0.1", r));
    gw = await startTestGateway({
      target,
      connections: [
        { name: "customers", type: "postgres", target: { host: target.pg.host, port: target.pg.port, database: "app", tls: "disable" }, credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, access: ["agents"] },
        { name: "billing", type: "http", target: { url: `http://127.0.0.1:${(billing.address() as { port: number }).port}` }, access: ["agents"] },
      ],
      overrides: {
        rules: [{ name: "invoices-for-juniors", groups: ["interns"], connections: ["billing"], when: { http: { paths: ["/v1/invoices"] } }, action: "approve", approvers: ["security"] }],
        masking: [{ columns: ["customers.email"], strategy: "redact" }, { connections: ["billing"], detectors: ["email", "credit_card"], strategy: "redact" }] },
    });
    const tokens = devIssuer({ dataDir: gw.dataDir, sub: "research-agent", groups: ["agents"] });
    db = portcullisPool({ host: gw.host, port: gw.port, connection: "customers", tokens, graphId: "customer-research" });
    fetchBilling = portcullisFetch({ gateway: `http://127.0.0.1:${gw.httpPort}`, connection: "billing", tokens, graphId: "customer-research" });
    approvals = { gateway: `http://127.0.0.1:${gw.httpPort}`, tokens };
  });

  after(async () => {
    await db?.end();
    await gw?.stop();
    await target?.stop();
    billing?.close();
  });

  const junior = () => {
    const tokens = devIssuer({ dataDir: gw.dataDir, sub: "junior-analyst", groups: ["agents", "interns"] });
    const gateway = `http://127.0.0.1:${gw.httpPort}`;
    const juniorDb = portcullisPool({ host: gw.host, port: gw.port, connection: "customers", tokens, graphId: "customer-research" });
    const graph = buildResearchGraph({ db: juniorDb, billing: portcullisFetch({ gateway, connection: "billing", tokens, graphId: "customer-research" }), approvals: { gateway, tokens } }, researchScript("Springfield"));
    return { graph, juniorDb };
  };
  const decide = (id: string, d: "approve" | "deny") => gw.gw.approvals.decide(id, { sub: "sec-1", groups: ["security"], iss: "dev", exp: 0, run: {} }, d);

  it("surfaces an approval as __interrupt__, and Command({ resume }) after approval completes the run with the data", async () => {
    const { graph, juniorDb } = junior();
    const config = { configurable: { thread_id: "junior-approve" } };
    const first = await graph.invoke(question("Springfield"), config) as { __interrupt__?: { value: { type: string; approval_id: string } }[] };
    const intr = first.__interrupt__?.[0]?.value;
    assert.equal(intr?.type, "portcullis_approval");
    decide(intr!.approval_id, "approve");
    const done = await graph.invoke(new Command({ resume: intr }), config);
    assert.match(String(done.messages.at(-1)!.content), /^Researched customers in Springfield/);
    const invoices = done.messages.filter((m) => m.getType() === "tool").map((m) => String((m as ToolMessage).content)).find((t) => t.includes("inv-1"));
    assert.ok(invoices, "the invoices came back after approval");
    assert.match(invoices, /\[REDACTED:credit_card\]/);
    await juniorDb.end();
  });

  it("routes a denied approval to the graph's error handling (the tool reports it to the model)", async () => {
    const { graph, juniorDb } = junior();
    const config = { configurable: { thread_id: "junior-deny" } };
    const first = await graph.invoke(question("Springfield"), config) as { __interrupt__?: { value: { approval_id: string } }[] };
    const intr = first.__interrupt__![0]!.value;
    decide(intr.approval_id, "deny");
    const done = await graph.invoke(new Command({ resume: intr }), config);
    const toolText = done.messages.filter((m) => m.getType() === "tool").map((m) => String((m as ToolMessage).content)).join("\n");
    assert.match(toolText, /PortcullisApprovalDeniedError|approval .* denied/);
    assert.ok(!toolText.includes("inv-1"));
    assert.match(String(done.messages.at(-1)!.content), /^Researched customers/);
    await juniorDb.end();
  });

  it("researches through the gateway: masked data back, every call audited with its run context", async () => {
    const graph = buildResearchGraph({ db, billing: fetchBilling, approvals }, researchScript("Springfield"));
    const out = await graph.invoke(question("Springfield"), { configurable: { thread_id: "research-1", run_id: "run-research-1" } });
    const last = out.messages.at(-1)!;
    assert.match(String(last.content), /^Researched customers in Springfield/);
    const toolText = out.messages.filter((m) => m.getType() === "tool").map((m) => String((m as ToolMessage).content)).join("\n");
    assert.match(toolText, /"name":"Ada","email":"\[REDACTED:customers\.email\]","city":"Springfield"/);
    assert.match(toolText, /\[REDACTED:credit_card\]/);
    assert.match(toolText, /"column_name":"email","data_type":"text"/, "describe_table ran through the gateway");
    for (const secret of ["ada@example.com", "alan@example.org", "4111 1111 1111 1111"]) assert.ok(!toolText.includes(secret), `${secret} reached the model`);

    gw.gw.journal.flush();
    const decisions = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "decision").map((r) => JSON.parse(r.data) as { type: string; statement: string; run?: Record<string, string>; run_hints?: Record<string, string> })
      .filter((d) => d.run?.thread_id === "research-1");
    assert.ok(decisions.some((d) => d.type === "sql" && d.statement.includes("from customers where city")));
    assert.ok(decisions.some((d) => d.type === "http" && d.statement === "GET /v1/invoices"));
    for (const d of decisions) {
      assert.deepEqual([d.run!.graph_id, d.run!.run_id, d.run_hints!.node], ["customer-research", "run-research-1", "tools"]);
    }
  });
});
