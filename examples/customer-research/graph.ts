/**
 * The customer-research agent: a LangGraph graph that looks customers up in PostgreSQL and their
 * invoices in the billing API, both through Portcullis. The chat model is scripted (a
 * @langchain/core chat model that replays the tool calls a real model would make; core's own
 * FakeStreamingChatModel repeats its first answer, so it cannot script a tool loop), so the graph
 * runs offline and the same way every time; swap in a real model and nothing else changes.
 *
 * Two lines connect it to the gateway: a pool and a fetch from @portcullis/langgraph. Everything
 * else (which statements may run, what is masked, what needs approval) is the gateway's business.
 */
import { AIMessage, type BaseMessage, HumanMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { ChatResult } from "@langchain/core/outputs";
import { END, MemorySaver, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { ToolNode } from "@langchain/langgraph/prebuilt";
import { z } from "zod";
import { type PortcullisFetch, type PortcullisPool, type WithApprovalOptions, portcullisSqlTools, withApproval } from "@portcullis/langgraph";

export interface ResearchDeps {
  db: PortcullisPool;
  billing: PortcullisFetch;
  approvals: WithApprovalOptions;
}

/** What the scripted model "decides", step by step: the tool calls a real model would make. */
export function researchScript(city: string): BaseMessage[] {
  const call = (id: string, name: string, args: Record<string, unknown>) => new AIMessage({ content: "", tool_calls: [{ id, name, args, type: "tool_call" }] });
  return [
    call("c1", "list_tables", {}),
    call("c1b", "describe_table", { table: "customers" }),
    call("c2", "query", { sql: `select id, name, email, city from customers where city = '${city}' order by id limit 3` }),
    call("c3", "invoices", { customer_id: 1 }),
    new AIMessage(`Researched customers in ${city}: found their contact records (masked by the gateway) and the first customer's invoices.`),
  ];
}

/** Answers with the next message of its script, whatever it is asked. */
export class ScriptedChatModel extends BaseChatModel {
  private step = 0;

  constructor(private readonly script: BaseMessage[]) {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  override bindTools(): this {
    return this;
  }

  async _generate(): Promise<ChatResult> {
    const message = this.script[Math.min(this.step++, this.script.length - 1)]!;
    return { generations: [{ text: typeof message.content === "string" ? message.content : "", message }] };
  }
}

export function buildResearchGraph(deps: ResearchDeps, script: BaseMessage[]) {
  const invoices = tool(
    withApproval(async ({ customer_id }: { customer_id: number }) => {
      const res = await deps.billing(`/v1/invoices?customer=${customer_id}`);
      return await res.text();
    }, deps.approvals),
    { name: "invoices", description: "A customer's invoices from the billing API.", schema: z.object({ customer_id: z.number() }) },
  );
  const tools = [...portcullisSqlTools(deps.db, { approvals: deps.approvals }), invoices];
  const model = new ScriptedChatModel(script).bindTools();
  return new StateGraph(MessagesAnnotation)
    .addNode("agent", async (state) => ({ messages: [await model.invoke(state.messages)] }))
    .addNode("tools", new ToolNode(tools))
    .addEdge(START, "agent")
    .addConditionalEdges("agent", (state) => ((state.messages.at(-1) as AIMessage).tool_calls?.length ? "tools" : END))
    .addEdge("tools", "agent")
    .compile({ checkpointer: new MemorySaver() });
}

export function question(city: string): { messages: BaseMessage[] } {
  return { messages: [new HumanMessage(`Research our customers in ${city}.`)] };
}
