/**
 * @portcullis/langgraph against a real gateway and PostgreSQL: a LangGraph graph whose nodes query
 * through portcullisPool. Each statement's audit record names the graph, thread, run and node; an
 * approval surfaces as `__interrupt__` and `Command({ resume })` after approval finishes the run
 * with the data; a denied approval reaches the graph's own error handling; a run longer than its
 * token's lifetime keeps working on refreshed tokens.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Annotation, Command, END, MemorySaver, START, StateGraph } from "@langchain/langgraph";
import pg from "pg";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../../portcullis/test/support/gateway.js";
import { PortcullisApprovalDeniedError, devIssuer, portcullisPool, withApproval, type PortcullisPool, type TokenSource } from "../src/index.js";

const State = Annotation.Root({
  customers: Annotation<{ id: number; email: string }[]>(),
  deleted: Annotation<number>(),
  error: Annotation<string>(),
});

describe("@portcullis/langgraph", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let db: PortcullisPool;
  let tokens: TokenSource;
  const gateway = () => `http://127.0.0.1:${gw.httpPort}`;

  before(async () => {
    target = await startTarget();
    const direct = new pg.Client(target.pg.clientConfig({ name: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, "app"));
    await direct.connect();
    await direct.query("create table customers (id int primary key, email text)");
    await direct.query("insert into customers select g, 'person' || g || '@example.com' from generate_series(1, 5) g");
    await direct.end();
    gw = await startTestGateway({
      target,
      overrides: {
        rules: [{ name: "deletes", when: { sql: { statements: ["delete"] } }, action: "approve", approvers: ["security"] }],
        masking: [{ columns: ["customers.email"], strategy: "redact" }],
      },
    });
    tokens = devIssuer({ dataDir: gw.dataDir, sub: "research-agent", groups: ["agents"] });
    db = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens, graphId: "customer-research" });
  });

  after(async () => {
    await db?.end();
    await gw?.stop();
    await target?.stop();
  });

  const build = () => {
    const remove = withApproval(async (id: number) => (await db.query("delete from customers where id = $1", [id])).rowCount ?? 0, { gateway: gateway(), tokens });
    return new StateGraph(State)
      .addNode("lookup", async () => ({ customers: (await db.query<{ id: number; email: string }>("select id, email from customers order by id")).rows }))
      .addNode("cleanup", async () => {
        try {
          return { deleted: await remove(3) };
        } catch (err) {
          if (err instanceof PortcullisApprovalDeniedError) return { error: `approval ${err.state}` };
          throw err;
        }
      })
      .addEdge(START, "lookup")
      .addEdge("lookup", "cleanup")
      .addEdge("cleanup", END)
      .compile({ checkpointer: new MemorySaver() });
  };

  const decide = (id: string, decision: "approve" | "deny") =>
    gw.gw.approvals.decide(id, { sub: "sec-1", groups: ["security"], iss: "dev", exp: 0, run: {} }, decision, decision === "deny" ? "not now" : undefined);

  it("names graph, thread, run and node in every statement's audit record, and interrupts for an approval", async () => {
    const graph = build();
    const config = { configurable: { thread_id: "thread-approve", run_id: "run-2024-001" } };
    const first = await graph.invoke({}, config) as { customers: { email: string }[]; __interrupt__?: { value: { type: string; approval_id: string; rule?: string } }[] };
    assert.equal(first.customers.length, 5);
    assert.ok(first.customers.every((c) => c.email === "[REDACTED:customers.email]"));
    const intr = first.__interrupt__?.[0]?.value;
    assert.equal(intr?.type, "portcullis_approval");
    assert.match(intr!.approval_id, /^[0-9a-f-]{36}$/);
    assert.equal(intr!.rule, "deletes");

    decide(intr!.approval_id, "approve");
    const done = await graph.invoke(new Command({ resume: intr }), config) as { deleted: number; error?: string };
    assert.equal(done.deleted, 1);
    assert.equal(done.error, undefined);

    gw.gw.journal.flush();
    const decisions = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "decision").map((r) => JSON.parse(r.data) as { statement: string; action: string; run?: Record<string, string>; run_hints?: Record<string, string> });
    const mine = decisions.filter((d) => d.run?.thread_id === "thread-approve");
    assert.ok(mine.length >= 3, `${mine.length} decisions for the thread`);
    for (const d of mine) {
      assert.equal(d.run!.graph_id, "customer-research");
      assert.equal(d.run!.thread_id, "thread-approve");
      assert.equal(d.run!.run_id, "run-2024-001");
      assert.ok(["lookup", "cleanup"].includes(d.run_hints!.node!), `node ${d.run_hints?.node}`);
    }
    assert.ok(mine.some((d) => d.run_hints!.node === "lookup" && d.statement.startsWith("select")));
    assert.ok(mine.some((d) => d.run_hints!.node === "cleanup" && d.statement.startsWith("delete") && d.action === "approve"));
  });

  it("routes a denied approval to the graph's error handling, and withdraws the retry's new request", async () => {
    const graph = build();
    const config = { configurable: { thread_id: "thread-deny" } };
    const first = await graph.invoke({}, config) as { __interrupt__?: { value: { approval_id: string } }[] };
    const intr = first.__interrupt__![0]!.value;
    decide(intr.approval_id, "deny");
    const done = await graph.invoke(new Command({ resume: intr }), config) as { deleted?: number; error?: string };
    assert.equal(done.error, "approval denied");
    assert.equal(done.deleted, undefined);
    assert.equal(gw.gw.approvals.list({ state: "pending" }).filter((a) => a.requester.sub === "research-agent").length, 0, "no request left pending");
  });

  it("keeps a run going past its token's lifetime on refreshed tokens", async () => {
    const shortLived = devIssuer({ dataDir: gw.dataDir, sub: "long-runner", groups: ["agents"], ttlSeconds: 2, refreshMarginMs: 500 });
    const pool = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens: shortLived, maxLifetimeSeconds: 1 });
    const graph = new StateGraph(State)
      .addNode("poll", async () => {
        const seen: number[] = [];
        const until = Date.now() + 5000;
        while (Date.now() < until) {
          seen.push((await pool.query<{ n: number }>("select count(*)::int as n from customers")).rows[0]!.n);
          await new Promise((r) => setTimeout(r, 100));
        }
        return { deleted: seen.length };
      })
      .addEdge(START, "poll")
      .addEdge("poll", END)
      .compile();
    const done = await graph.invoke({}, { configurable: { thread_id: "thread-long" } }) as { deleted: number };
    await pool.end();
    assert.ok(done.deleted > 10, `${done.deleted} queries`);
    gw.gw.journal.flush();
    const jtis = new Set(gw.gw.store.readAudit(0, 100_000)
      .filter((r) => r.type === "session_open")
      .map((r) => JSON.parse(r.data) as { sub: string; jti?: string })
      .filter((d) => d.sub === "long-runner").map((d) => d.jti));
    assert.ok(jtis.size >= 2, `${jtis.size} tokens used over a 5 s run of 2 s tokens`);
  });
});
