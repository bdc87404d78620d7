/**
 * `withApproval`: an operation that needs a human's yes becomes a LangGraph human-in-the-loop
 * interrupt instead of an error. On PX001 / 428 the node interrupts with
 * `{ type: "portcullis_approval", approval_id, operation, rule }`; the graph is resumed with
 * `Command({ resume })` once a human has decided (`portcullis approvals approve <id>`, Slack,
 * e-mail...). LangGraph then runs the node again from the start: the same operation is retried
 * and, approved, runs once on its grant. If it was denied or expired, the retry raises
 * `PortcullisApprovalDeniedError` for the graph to route on, and the fresh request the retry
 * caused is withdrawn. Safe under re-execution: nothing runs twice that the gateway did not allow.
 */
import { interrupt } from "@langchain/langgraph";
import { PortcullisApprovalDeniedError, PortcullisApprovalRequiredError } from "./errors.js";
import type { TokenSource } from "./tokens.js";
import { currentRunContext } from "./context.js";

export interface ApprovalInterrupt {
  type: "portcullis_approval";
  approval_id: string;
  operation: string;
  rule?: string;
}

export interface WithApprovalOptions {
  /** The gateway's HTTP listener (to read the approval's state). */
  gateway: string;
  tokens: TokenSource;
}

interface ApprovalView {
  state: string;
  reason?: string;
}

export function withApproval<A extends unknown[], R>(fn: (...args: A) => Promise<R>, o: WithApprovalOptions): (...args: A) => Promise<R> {
  const api = async (method: "GET" | "DELETE", id: string): Promise<ApprovalView | undefined> => {
    const res = await fetch(`${o.gateway.replace(/\/+$/, "")}/api/approvals/${encodeURIComponent(id)}`, {
      method,
      headers: { authorization: `Bearer ${await o.tokens.token(currentRunContext())}` },
      signal: AbortSignal.timeout(15_000),
    });
    return res.ok ? ((await res.json()) as ApprovalView) : undefined;
  };
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      if (!(err instanceof PortcullisApprovalRequiredError)) throw err;
      // First time: interrupts the graph. After Command({ resume }): returns the resume value.
      const resumed = interrupt<ApprovalInterrupt, unknown>({ type: "portcullis_approval", approval_id: err.approvalId, operation: err.message, ...(err.rule ? { rule: err.rule } : {}) });
      // We are here on the re-run, and the retry above needed approval again: the approval the graph
      // waited for did not let it through. Say why, and withdraw the request the retry just made.
      const earlier = (resumed as { approval_id?: unknown } | undefined)?.approval_id;
      const waitedFor = typeof earlier === "string" && earlier !== err.approvalId ? earlier : undefined;
      const view = waitedFor ? await api("GET", waitedFor) : undefined;
      await api("DELETE", err.approvalId).catch(() => undefined);
      const state = view?.state ?? "not granted";
      throw new PortcullisApprovalDeniedError(`portcullis: approval ${waitedFor ?? err.approvalId} ${state}${view?.reason ? `: ${view.reason}` : ""}`, waitedFor ?? err.approvalId, state);
    }
  };
}
