/**
 * Decides, for each column of a result, what masking applies: a column rule's strategy, the
 * detectors, or nothing. Columns that come straight from a table column are resolved through the
 * catalog (table OID + attribute number, PostgreSQL's own lineage); views through the lineage of
 * their definition; computed columns (table OID 0) through the lineage of the statement's parse tree.
 * Results are cached per target for a short time, so a redefined view is seen within seconds.
 */
import { parseStatementTrees, splitStatements } from "../../policy/sql/classify.js";
import { codeBody, doBlockText, readPlpgsql } from "../../policy/sql/code-bodies.js";
import type { ColumnMask, ColumnRules } from "../../masking/columns.js";
import { CLEAN, LineageAnalyzer, type OutputTaint, type RelationTaint, relationNames } from "../../masking/lineage.js";
import type { Strategy } from "../../masking/strategies.js";
import type { PgCatalog } from "./catalog.js";
import type { FieldDescription } from "./rows.js";

export type ColumnAction =
  | { kind: "mask"; mask: ColumnMask }
  | { kind: "detect" }
  | { kind: "pass" };

const CACHE_MS = 5_000;
const MAX_VIEW_DEPTH = 8;
/** Strictest first: a derived column takes the strictest strategy the connection's column rules use. */
const STRICTNESS: Strategy[] = ["null", "redact", "hash", "partial"];

interface Cached<T> { at: number; value: Promise<T> }

/** Catalog relations that expose sample values of other tables' columns (most_common_vals, histogram_bounds...). */
const STATISTICS_RELATIONS = new Set(["pg_stats", "pg_statistic", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data"]);
const ALL_TAINTED: RelationTaint = { column: () => true, any: true };

export class ResultPlanner {
  private readonly viewTaints = new Map<number, Cached<OutputTaint | undefined>>();
  private readonly derivedMask: ColumnMask;

  constructor(
    private readonly rules: ColumnRules,
    private readonly catalog: PgCatalog,
    private readonly detectors: boolean,
    strategies: Strategy[],
  ) {
    const strictest = STRICTNESS.find((s) => strategies.includes(s)) ?? "redact";
    this.derivedMask = { strategy: strictest, label: "derived" };
  }

  /** Nothing to do for any result of this connection. */
  get inert(): boolean {
    return this.rules.empty && !this.detectors;
  }

  get hasColumnRules(): boolean {
    return !this.rules.empty;
  }

  /** Forget cached catalog facts: a statement through the gateway may have changed tables or views. */
  invalidate(): void {
    this.viewTaints.clear();
    this.catalog.invalidate();
  }

  private get fallback(): ColumnAction {
    return this.detectors ? { kind: "detect" } : { kind: "pass" };
  }

  /** The action for each column of a RowDescription, given the statement that produced it (if known). */
  async plan(statement: string | undefined, fields: FieldDescription[]): Promise<ColumnAction[]> {
    if (this.rules.empty) return fields.map(() => this.fallback);
    const computed = fields.some((f) => f.tableOid === 0) ? await this.statementTaint(statement) : undefined;
    return Promise.all(fields.map(async (f, i): Promise<ColumnAction> => {
      if (f.tableOid !== 0) return this.columnOf(f);
      // Without a parse tree the lineage is unknown: mask (fail closed).
      if (!computed) return { kind: "mask", mask: this.derivedMask };
      const tainted = !computed.hasStar && computed.entries.length === fields.length ? computed.entries[i]! : computed.anyTainted;
      return tainted ? { kind: "mask", mask: this.derivedMask } : this.fallback;
    }));
  }

  /** Output taint of a statement text's (first) statement; undefined when it cannot be analysed. */
  async statementTaint(statement: string | undefined): Promise<OutputTaint | undefined> {
    if (statement === undefined) return undefined;
    const tree = parseStatementTrees(statement)[0];
    if (tree === undefined) return undefined;
    return this.analyse(tree, 0);
  }

  /**
   * Actions for the columns of a COPY ... TO STDOUT: the table's columns (or the listed ones) by
   * name, or the lineage of COPY (query). "all": the columns cannot be placed (every field is masked).
   */
  async copyPlan(sql: string): Promise<ColumnAction[] | "all" | undefined> {
    if (this.rules.empty) return undefined;
    const w = parseStatementTrees(sql)[0] as { CopyStmt?: Record<string, unknown> } | undefined;
    const copy = w?.CopyStmt;
    if (!copy) return "all";
    if (copy.query) {
      const out = await this.analyse(copy.query, 0);
      if (!out) return "all";
      if (out.hasStar) return out.anyTainted ? "all" : [];
      return out.entries.map((t) => (t ? { kind: "mask", mask: this.derivedMask } : this.fallback));
    }
    const rel = copy.relation as { schemaname?: string; relname?: string } | undefined;
    if (!rel?.relname) return "all";
    const oid = (await this.catalog.resolve(rel.schemaname, rel.relname))[0];
    const info = oid === undefined ? undefined : await this.catalog.relation(oid);
    if (!info) return "all";
    const listed = Array.isArray(copy.attlist)
      ? copy.attlist.map((a) => (a as { String?: { sval?: string } }).String?.sval ?? "")
      : [...info.columns.values()];
    return listed.map((column): ColumnAction => {
      const mask = this.rules.maskFor({ schema: info.schema, table: info.name, column });
      return mask ? { kind: "mask", mask } : this.fallback;
    });
  }

  /**
   * Whether any statement of `sql` reads a masked column anywhere in its tree: by name (qualified or
   * not, through views), by a star over a relation with masked columns, or as a whole-row reference
   * to one. `only` picks the statements to look at. undefined: the text cannot be analysed.
   */
  async readsMaskedColumn(sql: string, only: (tree: unknown) => boolean = () => true): Promise<boolean | undefined> {
    if (this.rules.empty) return false;
    const parts = splitStatements(sql);
    if (!parts || parts.length === 0) return undefined;
    for (const part of parts) {
      const tree = parseStatementTrees(part)[0];
      if (tree === undefined) return undefined;
      if (!only(tree)) continue;
      const reads = await this.statementReadsMasked(tree, part);
      if (reads !== false) return reads;
    }
    return false;
  }

  /** One statement of readsMaskedColumn; `text` is its own text (a PL/pgSQL body is parsed from it). */
  private async statementReadsMasked(tree: unknown, text: string): Promise<boolean | undefined> {
    const taints = new Map<string, RelationTaint>();
    for (const r of relationNames(tree)) taints.set(r.name, await this.relationTaint(r.schema, r.name, 0));
    if ([...taints.values()].some((t) => t.any) && (referencesMasked(tree, taints) || attachesToMasked(tree, taints))) return true;
    // Code the statement runs now or keeps for later (a DO block, a function body) reads what its SQL reads.
    const bodies = embeddedSql(tree, text);
    if (bodies === undefined) return undefined;
    for (const body of bodies) {
      const reads = await this.readsMaskedColumn(body);
      if (reads !== false) return reads;
    }
    return false;
  }

  private async columnOf(f: FieldDescription): Promise<ColumnAction> {
    const rel = await this.catalog.relation(f.tableOid);
    if (!rel) return { kind: "mask", mask: this.derivedMask };
    const column = rel.columns.get(f.attnum);
    if (rel.kind === "v" || rel.kind === "m") {
      const taint = await this.viewTaint(f.tableOid, 0);
      const tainted = !taint || (taint.hasStar ? taint.anyTainted : taint.entries[f.attnum - 1] ?? true);
      return tainted ? { kind: "mask", mask: this.derivedMask } : this.fallback;
    }
    // Attribute 0 (or one the catalog does not list) is the whole row: it carries every column, masked ones too.
    if (column === undefined) return this.rules.coversTable(rel.schema, rel.name) ? { kind: "mask", mask: this.derivedMask } : this.fallback;
    const mask = this.rules.maskFor({ schema: rel.schema, table: rel.name, column });
    return mask ? { kind: "mask", mask } : this.fallback;
  }

  private async analyse(tree: unknown, depth: number): Promise<OutputTaint | undefined> {
    const taints = new Map<string, RelationTaint>();
    for (const r of relationNames(tree)) taints.set(`${r.schema ?? ""}.${r.name}`, await this.relationTaint(r.schema, r.name, depth));
    return new LineageAnalyzer((schema, name) => taints.get(`${schema ?? ""}.${name}`)).statement(tree);
  }

  /** Taint of a relation named in a statement: every same-named relation the catalog knows, OR-ed. */
  private async relationTaint(schema: string | undefined, name: string, depth: number): Promise<RelationTaint> {
    // Planner statistics hold sample values of every column, masked ones included.
    if (STATISTICS_RELATIONS.has(name.toLowerCase())) return ALL_TAINTED;
    const byName: RelationTaint = {
      column: (c) => this.rules.coversColumn(schema, name, c),
      any: this.rules.coversTable(schema, name),
    };
    const oids = await this.catalog.resolve(schema, name);
    const parts: RelationTaint[] = [byName];
    for (const oid of oids) {
      const rel = await this.catalog.relation(oid);
      if (!rel) continue;
      if (rel.kind === "v" || rel.kind === "m") {
        const out = await this.viewTaint(oid, depth + 1);
        if (!out) { parts.push({ column: () => true, any: true }); continue; }
        const names = [...rel.columns.entries()];
        const tainted = new Set(names.filter(([attnum]) => (out.hasStar ? out.anyTainted : out.entries[attnum - 1] ?? true)).map(([, n]) => n));
        parts.push({ column: (c) => tainted.has(c), any: tainted.size > 0 });
      } else {
        parts.push({ column: (c) => this.rules.coversColumn(rel.schema, rel.name, c), any: this.rules.coversTable(rel.schema, rel.name) });
      }
    }
    if (parts.every((p) => !p.any)) return CLEAN;
    return { column: (c) => parts.some((p) => p.column(c)), any: parts.some((p) => p.any) };
  }

  /** Taint of a view's output columns, from its definition; undefined = cannot tell (mask). */
  private viewTaint(oid: number, depth: number): Promise<OutputTaint | undefined> {
    const hit = this.viewTaints.get(oid);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
    const value = (async () => {
      if (depth > MAX_VIEW_DEPTH) return undefined;
      const def = await this.catalog.viewDefinition(oid);
      const tree = def === undefined ? undefined : parseStatementTrees(def)[0];
      return tree === undefined ? undefined : this.analyse(tree, depth);
    })();
    this.viewTaints.set(oid, { at: Date.now(), value });
    value.catch(() => this.viewTaints.delete(oid));
    return value;
  }
}

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/** Whether a tree's column references touch a tainted relation's masked columns (see readsMaskedColumn). */
function referencesMasked(tree: unknown, taints: Map<string, RelationTaint>): boolean {
  // Aliases name relations too: `select c from customers c` is a whole-row reference to customers.
  const byAlias = new Map<string, RelationTaint>(taints);
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(collect); return; }
    if (!isNode(v)) return;
    if (typeof v.relname === "string" && isNode(v.alias) && typeof v.alias.aliasname === "string") {
      const t = taints.get(v.relname);
      if (t) byAlias.set(v.alias.aliasname, t);
    }
    for (const x of Object.values(v)) collect(x);
  };
  collect(tree);
  const all = [...taints.values()];
  let found = false;
  const visit = (v: unknown): void => {
    if (found) return;
    if (Array.isArray(v)) { v.forEach(visit); return; }
    if (!isNode(v)) return;
    const ref = v.ColumnRef;
    if (isNode(ref) && Array.isArray(ref.fields)) {
      const fields = ref.fields.map((f) => (isNode(f) && isNode(f.String) && typeof f.String.sval === "string" ? f.String.sval : isNode(f) && "A_Star" in f ? "*" : ""));
      const last = fields[fields.length - 1]!;
      const qualifier = fields.length >= 2 ? byAlias.get(fields[fields.length - 2]!) : undefined;
      const candidates = qualifier ? [qualifier] : all;
      if (last === "*") found = candidates.some((t) => t.any);
      else if (fields.length === 1 && byAlias.get(last)?.any) found = true;
      else found = candidates.some((t) => t.column(last));
      if (found) return;
    }
    for (const x of Object.values(v)) visit(x);
  };
  visit(tree);
  return found;
}

/**
 * Triggers and rules see whole rows (NEW, OLD) of the relation they attach to; a rename or schema move
 * takes a relation or column out from under rules that match by name; an ALTER TABLE can copy a
 * masked column into a new one (a generated column, ALTER ... TYPE ... USING) or detach its rows. Either way, on a relation with
 * masked columns, the statement counts as reading them.
 */
const ATTACHING = new Set(["CreateTrigStmt", "RuleStmt", "RenameStmt", "AlterObjectSchemaStmt", "AlterTableStmt"]);

function attachesToMasked(tree: unknown, taints: Map<string, RelationTaint>): boolean {
  if (!isNode(tree)) return false;
  return Object.entries(tree).some(([type, n]) =>
    ATTACHING.has(type) && isNode(n) && isNode(n.relation) && typeof n.relation.relname === "string" && (taints.get(n.relation.relname)?.any ?? false));
}

/**
 * The SQL inside a DO block or a function body, as statements to judge like the agent's own;
 * [] when the statement has none (an SQL-standard body is part of the tree already); undefined when
 * it cannot be read (another language, SQL built from strings at run time).
 */
function embeddedSql(tree: unknown, text: string): string[] | undefined {
  if (!isNode(tree)) return [];
  if (isNode(tree.DoStmt)) {
    const { language, source } = codeBody(tree.DoStmt, "do");
    return language === "plpgsql" && source !== undefined ? plpgsqlSql(doBlockText(source)) : undefined;
  }
  if (isNode(tree.CreateFunctionStmt)) {
    const n = tree.CreateFunctionStmt;
    if (n.sql_body !== undefined) return [];
    const { language, source } = codeBody(n, "function");
    if (language === "sql") return source === undefined ? undefined : [source];
    // The PL/pgSQL parser takes the whole CREATE FUNCTION.
    return language === "plpgsql" ? plpgsqlSql(text) : undefined;
  }
  return [];
}

/** The statements and expressions of a PL/pgSQL body; undefined when it runs SQL built at run time. */
function plpgsqlSql(text: string): string[] | undefined {
  const body = readPlpgsql(text);
  return body && body.executed.length === 0 ? body.sql : undefined;
}
