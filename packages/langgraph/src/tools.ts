/**
 * Governed database access for a ReAct agent out of the box: `query`, `list_tables` and
 * `describe_table` as LangChain tools that run through the gateway (policy, masking, audit,
 * approvals). Results go back to the model as JSON, already masked by the gateway.
 */
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { type WithApprovalOptions, withApproval } from "./approval.js";
import type { PortcullisPool } from "./pool.js";

export interface SqlToolsOptions {
  /** Turn approvals into LangGraph interrupts (recommended inside a graph). */
  approvals?: WithApprovalOptions;
  /** Rows returned to the model at most (the rest is counted). Default 100. */
  maxRows?: number;
}

export function portcullisSqlTools(pool: PortcullisPool, o: SqlToolsOptions = {}) {
  const maxRows = o.maxRows ?? 100;
  const run = async (sql: string, values?: unknown[]) => {
    const r = await pool.query(sql, values);
    const rows = r.rows.slice(0, maxRows);
    return JSON.stringify({ rows, row_count: r.rowCount ?? r.rows.length, ...(r.rows.length > maxRows ? { truncated: true } : {}) });
  };
  const guarded = o.approvals ? withApproval(run, o.approvals) : run;
  return [
    tool(async ({ sql }) => guarded(sql), {
      name: "query",
      description: "Run one SQL statement against the database (read-only work is usually allowed; risky statements may need a human's approval or be refused).",
      schema: z.object({ sql: z.string().describe("the SQL statement") }),
    }),
    tool(async () => guarded("select table_schema, table_name from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') order by 1, 2"), {
      name: "list_tables",
      description: "List the tables the database offers.",
      schema: z.object({}),
    }),
    tool(async ({ table }) => guarded(
      "select column_name, data_type, is_nullable from information_schema.columns where table_name = $1 order by ordinal_position",
      [table],
    ), {
      name: "describe_table",
      description: "Describe a table's columns.",
      schema: z.object({ table: z.string().describe("the table name") }),
    }),
  ];
}
