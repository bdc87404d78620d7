/**
 * Column rules of the `masking:` config: which `schema.table.column` is masked, and how.
 * Pure: compiled once from config, asked per column. Patterns are `table.column` (any schema)
 * or `schema.table.column`, with `*` globs per part, matched case-insensitively.
 */
import type { MaskingRuleConfig } from "../config/schema.js";
import { globToRegExp } from "../policy/glob.js";
import type { Strategy } from "./strategies.js";

export interface ColumnRef {
  schema?: string;
  table: string;
  column: string;
}

interface CompiledColumnRule {
  schema?: RegExp;
  table: RegExp;
  column: RegExp;
  strategy: Strategy;
  refuseNonText: boolean;
  /** The pattern as written: `[REDACTED:<pattern>]` names what was masked without naming a value. */
  label: string;
}

export interface ColumnMask {
  strategy: Strategy;
  label: string;
  /** Refuse (rather than NULL) a value whose type cannot carry the mask. */
  refuseNonText?: boolean;
}

export class ColumnRules {
  private readonly rules: CompiledColumnRule[];

  constructor(config: readonly MaskingRuleConfig[], connection: string) {
    this.rules = config
      .filter((m) => !m.connections || m.connections.includes(connection))
      .flatMap((m) => (m.columns ?? []).map((p) => compile(p, m.strategy, m.non_text === "refuse")));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** The mask for a column of a base table, or undefined when no rule covers it. */
  maskFor(ref: ColumnRef): ColumnMask | undefined {
    for (const r of this.rules) {
      if (r.schema && (ref.schema === undefined || !r.schema.test(ref.schema))) continue;
      if (r.table.test(ref.table) && r.column.test(ref.column)) {
        return { strategy: r.strategy, label: r.label, ...(r.refuseNonText ? { refuseNonText: true } : {}) };
      }
    }
    return undefined;
  }

  /**
   * Whether some rule may cover columns of this table (by name; schema when known). Used for
   * whole-row references (`row_to_json(c)`), which carry every column.
   */
  coversTable(schema: string | undefined, table: string): boolean {
    return this.rules.some((r) => (!r.schema || schema === undefined || r.schema.test(schema)) && r.table.test(table));
  }

  /** Whether a column of that name in that table is masked (schema unknown: any rule's schema). */
  coversColumn(schema: string | undefined, table: string, column: string): boolean {
    return this.rules.some((r) => (!r.schema || schema === undefined || r.schema.test(schema)) && r.table.test(table) && r.column.test(column));
  }
}

function compile(pattern: string, strategy: Strategy, refuseNonText: boolean): CompiledColumnRule {
  const parts = pattern.split(".");
  const g = (p: string) => globToRegExp(p, { caseInsensitive: true });
  const [schema, table, column] = parts.length === 3 ? parts : [undefined, parts[0]!, parts[1]!];
  return { ...(schema ? { schema: g(schema) } : {}), table: g(table!), column: g(column!), strategy, refuseNonText, label: pattern };
}
