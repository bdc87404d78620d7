/** What the policy is asked about, and what it answers. Protocol-neutral. */
import type { StatementInfo } from "./sql/classify.js";

export type Operation =
  | { type: "sql"; statements: StatementInfo[] }
  | {
    type: "http"; method: string; path: string; headers: Record<string, string | undefined>; mcp?: McpCall[]; body?: unknown;
    /** Why the body could not be read as the target would (then `body` is absent); see policy/http.ts. */
    undecidable?: { reason: string; mcp: boolean };
    /** The connection's `paths_case_sensitive`. */
    pathsCaseSensitive?: boolean;
  }
  | { type: "ssh"; command: string };

/** A JSON-RPC `tools/call` inside an MCP request (HTTP connections with `mcp: true`). */
export interface McpCall {
  tool: string;
}

export type Action = "allow" | "deny" | "approve";

/** Strictness order: the strictest outcome across the parts of one operation wins. */
export const STRICTNESS: Record<Action, number> = { allow: 0, approve: 1, deny: 2 };

export interface Decision {
  action: Action;
  /** The deciding rule; absent when nothing matched and the default (allow) applied. */
  rule?: string;
  message?: string;
  /** For SQL: the decision of each statement, in order. */
  statements?: Array<{ action: Action; rule?: string }>;
}

/** Name of the built-in rule that denies what cannot be parsed when no rule speaks of `unknown`. */
export const UNKNOWN_DEFAULT_RULE = "default-deny-unknown";

/** Built-in rule refusing an HTTP request whose body a `body_json` or MCP rule would have to read but cannot (400 undecidable_body). */
export const UNDECIDABLE_BODY_RULE = "undecidable-body";

/** Built-in rule refusing changes to settings that alter how SQL text is read (lexer-settings.ts). */
export const PROTECTED_SETTING_RULE = "protected-setting";
