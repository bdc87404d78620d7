/**
 * An MCP server (Streamable HTTP, from @modelcontextprotocol/sdk) behind the gateway, reached by
 * the SDK's own client with a gateway token: an allowed tool call passes with its PII masked; a
 * tool a rule denies comes back as a JSON-RPC error and never reaches the server.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

describe("MCP through the gateway", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let server: Server;
  const called: string[] = [];

  before(async () => {
    target = await startTarget();
    server = createServer(async (req, res) => {
      // Stateless: a server and transport per request, as the SDK documents for that mode.
      const mcp = new McpServer({ name: "crm", version: "1.0.0" });
      mcp.registerTool("lookup_customer", { description: "find a customer", inputSchema: { id: z.number() } }, async ({ id }) => {
        called.push(`lookup_customer ${id}`);
        return { content: [{ type: "text", text: `customer ${id}: Ada, ada.lovelace@example.com, SSN 123-45-6789` }] };
      });
      mcp.registerTool("delete_customer", { description: "delete a customer", inputSchema: { id: z.number() } }, async ({ id }) => {
        called.push(`delete_customer ${id}`);
        return { content: [{ type: "text", text: "deleted" }] };
      });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on("close", () => { void transport.close(); void mcp.close(); });
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    gw = await startTestGateway({
      target,
      connections: [{ name: "crm", type: "http", mcp: true, target: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }, access: ["agents"] }],
      overrides: {
        rules: [{ name: "no-deletes", connections: ["crm"], when: { mcp: { tools: ["delete_*"] } }, action: "deny" }],
        masking: [{ connections: ["crm"], detectors: ["email", "us_ssn"], strategy: "redact" }],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await target?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  const connect = async () => {
    const client = new Client({ name: "agent", version: "1.0.0" });
    const token = await gw.token("agent-1", ["agents"]);
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gw.httpPort}/c/crm/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }));
    return client;
  };

  it("passes an allowed tool call with its PII masked", async () => {
    const client = await connect();
    const tools = await client.listTools();
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ["delete_customer", "lookup_customer"]);
    const r = await client.callTool({ name: "lookup_customer", arguments: { id: 7 } });
    const text = (r.content as { text: string }[])[0]!.text;
    assert.equal(text, "customer 7: Ada, [REDACTED:email], SSN [REDACTED:us_ssn]");
    assert.deepEqual(called, ["lookup_customer 7"]);
    await client.close();
  });

  it("does not let a denied tool ride in a batch with an allowed one", async () => {
    const token = await gw.token("agent-1", ["agents"]);
    const batch = [
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "lookup_customer", arguments: { id: 1 } } },
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "delete_customer", arguments: { id: 1 } } },
    ];
    const before = called.length;
    const res = await fetch(`http://127.0.0.1:${gw.httpPort}/c/crm/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify(batch),
    });
    assert.equal(res.status, 200);
    const answers = (await res.json()) as { id: number; error?: { message: string } }[];
    assert.deepEqual(answers.map((a) => [a.id, a.error?.message]), [[1, "portcullis: denied by rule no-deletes"], [2, "portcullis: denied by rule no-deletes"]]);
    assert.equal(called.length, before, "neither call reached the server");
  });

  it("answers a denied tool with a JSON-RPC error, without calling it", async () => {
    const client = await connect();
    await assert.rejects(client.callTool({ name: "delete_customer", arguments: { id: 7 } }), /portcullis: denied by rule no-deletes/);
    assert.ok(!called.some((c) => c.startsWith("delete_customer")));
    // The session goes on.
    const r = await client.callTool({ name: "lookup_customer", arguments: { id: 8 } });
    assert.match((r.content as { text: string }[])[0]!.text, /^customer 8/);
    await client.close();
    gw.gw.journal.flush();
    const decisions = gw.gw.store.readAudit(0, 100_000).filter((x) => x.type === "decision").map((x) => JSON.parse(x.data) as { statement: string; action: string; rule?: string });
    assert.ok(decisions.some((d) => d.statement === "POST /mcp tools/call delete_customer" && d.action === "deny" && d.rule === "no-deletes"));
  });
});
