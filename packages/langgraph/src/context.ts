/**
 * The run context of the LangGraph node that is running now: which graph, thread, run and node.
 * Read from LangGraph's own config (getConfig()), so nothing has to be passed by hand; outside a
 * graph it is empty.
 */
import { getConfig } from "@langchain/langgraph";

export interface RunContext {
  graph_id?: string;
  thread_id?: string;
  run_id?: string;
  node?: string;
}

export function currentRunContext(graphId?: string): RunContext {
  let config: ReturnType<typeof getConfig> | undefined;
  try {
    config = getConfig();
  } catch {
    return graphId ? { graph_id: graphId } : {};
  }
  const metadata = (config?.metadata ?? {}) as Record<string, unknown>;
  const configurable = (config?.configurable ?? {}) as Record<string, unknown>;
  // LangGraph ≥ 1 puts the execution's ids in executionInfo (and serverInfo on LangGraph Server).
  const exec = (config as { executionInfo?: { threadId?: unknown; runId?: unknown } } | undefined)?.executionInfo;
  const server = (config as { serverInfo?: { graphId?: unknown } } | undefined)?.serverInfo;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const ctx: RunContext = {};
  const graph = graphId ?? str(server?.graphId) ?? str(metadata.graph_id) ?? str(metadata.assistant_id);
  const thread = str(exec?.threadId) ?? str(configurable.thread_id) ?? str(metadata.thread_id);
  const run = str(exec?.runId) ?? str((config as { runId?: unknown } | undefined)?.runId) ?? str(configurable.run_id) ?? str(metadata.run_id);
  const node = str(metadata.langgraph_node);
  if (graph) ctx.graph_id = graph;
  if (thread) ctx.thread_id = thread;
  if (run) ctx.run_id = run;
  if (node) ctx.node = node;
  return ctx;
}

/** A stable key for a context (pools and token caches are per context). */
export function contextKey(ctx: RunContext): string {
  return [ctx.graph_id ?? "", ctx.thread_id ?? "", ctx.run_id ?? "", ctx.node ?? ""].join("\u0000");
}
