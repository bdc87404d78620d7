/**
 * MCP over Streamable HTTP, as the gateway sees it: a POST carries a JSON-RPC message (or a batch);
 * each `tools/call` names the tool it calls, which rules judge (`when.mcp.tools`). A refusal goes
 * back in JSON-RPC's own words, an error object for each request, so MCP clients report it as a
 * failed tool call rather than a broken transport. Tool results are JSON (or SSE carrying JSON)
 * and are masked like any other body.
 */
import type { McpCall } from "../../policy/decision.js";
import { LooseNumber } from "../../policy/http.js";

interface RpcMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: { name?: unknown } | undefined;
}

export interface McpRequest {
  calls: McpCall[];
  /** Ids of the messages that expect a response (requests, not notifications). */
  ids: (string | number)[];
  batch: boolean;
  /** Why a call in it cannot be named the way every target would name it (then rules cannot judge it). */
  unreadable?: string;
}

/** Server-defined JSON-RPC error codes the gateway answers with. */
export const MCP_ERRORS = { denied: -32001, approvalRequired: -32002, approvalRefused: -32003, refused: -32004 } as const;

/**
 * The JSON-RPC messages of a body the gateway read (json-body.ts); undefined when it holds none (not
 * an object or an array of objects). Every object counts, whatever its `jsonrpc` member says: a
 * target handles each message of a batch on its own (JSON-RPC 2.0 §6), so one malformed neighbour,
 * or a target lax about the version, must not hide a call. `method` is compared ignoring case, which
 * only ever finds more calls.
 */
export function parseMcp(parsed: unknown): McpRequest | undefined {
  const batch = Array.isArray(parsed);
  const elements = (batch ? parsed : [parsed]) as unknown[];
  const messages = elements.filter((m): m is RpcMessage => typeof m === "object" && m !== null && !Array.isArray(m));
  if (messages.length === 0 && !elements.some(Array.isArray)) return undefined;
  const calls: McpCall[] = [];
  const ids: (string | number)[] = [];
  // A target that flattens nested batches would run what they hold.
  let unreadable = elements.some(Array.isArray) ? "a JSON-RPC batch nested in a batch" : undefined;
  for (const m of messages) {
    if (typeof m.id === "string" || typeof m.id === "number") ids.push(m.id);
    else if (m.id instanceof LooseNumber) ids.push(m.id.value);
    if (typeof m.method !== "string" || m.method.toLowerCase() !== "tools/call") continue;
    // Positional params, or a name that is not a string (an array a target turns into its text, a
    // `__proto__` it copies from): which tool runs is the target's guess, not something to judge.
    const params = m.params;
    if (typeof params !== "object" || params === null || Array.isArray(params) || typeof params.name !== "string") {
      unreadable ??= "a tools/call that does not name its tool as a string";
      continue;
    }
    calls.push({ tool: params.name });
  }
  return { calls, ids, batch, ...(unreadable ? { unreadable } : {}) };
}

export function rpcErrorBody(req: McpRequest, code: number, message: string, data: Record<string, unknown>): string {
  const errors = req.ids.map((id) => ({ jsonrpc: "2.0", id, error: { code, message, data } }));
  return JSON.stringify(req.batch ? errors : errors[0] ?? { jsonrpc: "2.0", id: null, error: { code, message, data } });
}
