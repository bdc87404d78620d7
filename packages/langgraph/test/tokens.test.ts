/**
 * Token sources against a real OIDC provider (oidc-provider): client credentials with an RFC 8707
 * resource, RFC 8693 token exchange whose run claims the gateway records as signed run context,
 * caching, and refresh before expiry. Then typed errors from real gateway refusals.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { RESOURCE, type OidcProvider, startOidcProvider } from "../../portcullis/test/support/oidc.js";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../../portcullis/test/support/gateway.js";
import {
  PortcullisBudgetExceededError, PortcullisDeniedError, PortcullisRevokedError, clientCredentials, portcullisFetch, portcullisPool, tokenExchange,
} from "../src/index.js";

describe("token sources and typed errors", () => {
  let idp: OidcProvider;
  let target: TestTarget;
  let gw: TestGateway;
  let api: Server;

  before(async () => {
    idp = await startOidcProvider({ groups: ["agents"], ttlSeconds: 4, tokenExchange: true });
    target = await startTarget();
    api = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}'));
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    gw = await startTestGateway({
      target,
      connections: [
        { name: "app", type: "postgres", target: { host: target.pg.host, port: target.pg.port, database: "app", tls: "disable" }, credentials: { username: "app_user", password: "S3cr3t-upstream-pa55word-QX7" }, access: ["agents"] },
        { name: "billing", type: "http", target: { url: `http://127.0.0.1:${(api.address() as { port: number }).port}` }, access: ["agents"] },
      ],
      overrides: {
        identity: { dev_issuer: true, admins: ["security"], issuers: [{ issuer: idp.issuer, audience: "portcullis", algorithms: ["RS256"] }] },
        rules: [
          { name: "no-ddl", when: { sql: { statements: ["ddl"] } }, action: "deny" },
          { name: "no-admin-api", when: { http: { paths: ["/admin/**"] } }, action: "deny" },
        ],
        budgets: [{ name: "tiny", subjects: ["budgeted"], statements_per_hour: 1 }],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    await idp?.close();
    api?.close();
  });

  const cc = (margin = 1000) => clientCredentials({ tokenUrl: `${idp.issuer}/token`, clientId: idp.clientId, clientSecret: "agent-1-secret-that-is-long-enough", resource: RESOURCE, scope: "gateway", refreshMarginMs: margin });

  it("client credentials: a resource-bound token the gateway accepts, cached, and refreshed before it expires", async () => {
    const source = cc();
    const t1 = await source.token();
    assert.equal(await source.token(), t1, "cached");
    const db = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens: source });
    assert.equal((await db.query<{ one: number }>("select 1 as one")).rows[0]!.one, 1);
    await new Promise((r) => setTimeout(r, 3200));
    const t2 = await source.token();
    assert.notEqual(t2, t1, "a new token within the refresh margin of expiry");
    await db.end();
  });

  it("token exchange: the run's claims come back signed, and the gateway records them as run context", async () => {
    const exchanged = tokenExchange({ tokenUrl: `${idp.issuer}/token`, clientId: idp.clientId, clientSecret: "agent-1-secret-that-is-long-enough", subject: cc(), resource: RESOURCE });
    const db = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens: exchanged, graphId: "research" });
    const State = Annotation.Root({ n: Annotation<number>() });
    const graph = new StateGraph(State)
      .addNode("count", async () => ({ n: (await db.query<{ n: number }>("select 42 as n")).rows[0]!.n }))
      .addEdge(START, "count").addEdge("count", END).compile();
    const out = await graph.invoke({}, { configurable: { thread_id: "exchange-thread", run_id: "exchange-run" } });
    assert.equal(out.n, 42);
    await db.end();
    gw.gw.journal.flush();
    const rec = gw.gw.store.readAudit(0, 100_000).filter((r) => r.type === "decision").map((r) => JSON.parse(r.data) as { run?: Record<string, string> })
      .find((d) => d.run?.thread_id === "exchange-thread");
    assert.ok(rec, "a decision with signed run context");
    assert.deepEqual(rec.run, { graph_id: "research", thread_id: "exchange-thread", run_id: "exchange-run" });
  });

  it("turns gateway refusals into typed errors, over PostgreSQL and HTTP", async () => {
    const source = cc();
    const db = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens: source });
    await assert.rejects(db.query("create table x (i int)"), (e) => e instanceof PortcullisDeniedError && e.rule === "no-ddl");
    const billing = portcullisFetch({ gateway: `http://127.0.0.1:${gw.httpPort}`, connection: "billing", tokens: source });
    assert.deepEqual(await (await billing("/v1/ok")).json(), { ok: true });
    await assert.rejects(billing("/admin/users"), (e) => e instanceof PortcullisDeniedError && e.rule === "no-admin-api");
    await db.end();

    const budgeted = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens: { token: () => gw.token("budgeted", ["agents"]) } });
    await budgeted.query("select 1");
    await assert.rejects(budgeted.query("select 2"), (e) => e instanceof PortcullisBudgetExceededError);
    await budgeted.end();

    const revokedTokens = { token: () => gw.token("to-be-revoked", ["agents"]) };
    const revokedDb = portcullisPool({ host: gw.host, port: gw.port, connection: "app", tokens: revokedTokens });
    const revokedApi = portcullisFetch({ gateway: `http://127.0.0.1:${gw.httpPort}`, connection: "billing", tokens: revokedTokens });
    gw.gw.containment.revoke({ kind: "subject", value: "to-be-revoked", reason: "test", by: "responder" });
    await assert.rejects(revokedDb.query("select 1"), (e) => e instanceof PortcullisRevokedError);
    await assert.rejects(revokedApi("/v1/ok"), (e) => e instanceof PortcullisRevokedError);
    await revokedDb.end();
  });
});
