/**
 * Column lineage over a statement's parse tree: which output columns derive from a masked column.
 * Pure; the catalog facts it needs (which relations are views, and their own taint) come in through
 * `RelationLookup`. Deliberately conservative: an output expression that references a masked column
 * anywhere (alias, cast, function, operator, concatenation, CASE, subquery, aggregate, whole-row
 * reference, JSON building) is masked whole, and a name that could refer to a masked column in any
 * relation in scope is treated as if it does.
 */
import { type Node, isObj, unwrap } from "../policy/sql/ast.js";

/** What the analysis knows about a relation in scope. */
export interface RelationTaint {
  /** Whether the relation's column of this name carries masked data. */
  column(name: string): boolean;
  /** Whether any of its columns does (a whole-row reference carries them all). */
  any: boolean;
}

export const CLEAN: RelationTaint = { column: () => false, any: false };
/** A relation the analysis cannot see into: every column counts as masked. */
export const TAINTED: RelationTaint = { column: () => true, any: true };

/** Taint of a relation named in FROM (not a CTE): a base table, a view, or unknown (undefined = clean). */
export type RelationLookup = (schema: string | undefined, name: string) => RelationTaint | undefined;

export interface OutputTaint {
  /** Per target-list entry, in order; a star entry counts as one entry here. */
  entries: boolean[];
  /** Output names of the entries (ResTarget alias or the referenced column), for derived relations. */
  names: (string | undefined)[];
  /** Whether the target list holds `*` / `rel.*` (positions in the result are then not 1:1). */
  hasStar: boolean;
  anyTainted: boolean;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function fieldNames(fields: unknown): { names: string[]; star: boolean } {
  const names: string[] = [];
  let star = false;
  for (const f of list(fields)) {
    const w = unwrap(f);
    if (w?.[0] === "String" && typeof w[1].sval === "string") names.push(w[1].sval);
    else if (w?.[0] === "A_Star") star = true;
  }
  return { names, star };
}

class Scope {
  readonly rels = new Map<string, RelationTaint>();
  constructor(readonly ctes: Map<string, RelationTaint>, readonly parent?: Scope) {}

  find(name: string): RelationTaint | undefined {
    return this.rels.get(name) ?? this.parent?.find(name);
  }

  all(): RelationTaint[] {
    return [...this.rels.values(), ...(this.parent?.all() ?? [])];
  }

  cte(name: string): RelationTaint | undefined {
    return this.ctes.get(name) ?? this.parent?.cte(name);
  }
}

/**
 * A derived relation (subquery, CTE, VALUES) as a relation in scope. Its columns are named by the
 * alias column list when there is one (`t(x)`, `cte(e)`), else by the output names; a tainted
 * output whose name cannot be known, or a star, taints every column of the relation.
 */
function derived(out: OutputTaint, aliasColumns: string[] = []): RelationTaint {
  const names = out.names.map((n, i) => aliasColumns[i] ?? n);
  const unplaceable = out.hasStar || names.some((n, i) => n === undefined && out.entries[i] === true);
  if (unplaceable && out.anyTainted) return { column: () => true, any: true };
  const tainted = new Set(names.filter((n, i): n is string => n !== undefined && out.entries[i] === true));
  return { column: (n) => tainted.has(n), any: out.anyTainted };
}

function aliasColumnNames(alias: unknown): string[] {
  return isObj(alias) ? fieldNames(alias.colnames).names : [];
}

export class LineageAnalyzer {
  /** @param maskingByName whether functions that read relations named in strings count as masked */
  constructor(private readonly lookup: RelationLookup, private readonly maskingByName = true) {}

  /** Output taint of a row-returning statement; undefined when it returns no rows the analysis knows. */
  statement(stmt: unknown, outer?: Scope): OutputTaint | undefined {
    const w = unwrap(stmt);
    if (!w) return undefined;
    const [type, n] = w;
    switch (type) {
      case "SelectStmt":
        return this.select(n, outer);
      case "InsertStmt":
      case "UpdateStmt":
      case "DeleteStmt":
      case "MergeStmt": {
        if (!n.returningList && !isObj(n.returningClause)) return undefined;
        const scope = new Scope(this.ctes(n.withClause, outer), outer);
        this.addFrom(scope, [n.relation, ...list(n.fromClause), ...list(n.usingClause)]);
        const returning = isObj(n.returningClause) ? n.returningClause.exprs : n.returningList;
        return this.targets(list(returning), scope);
      }
      case "DeclareCursorStmt":
      case "PrepareStmt":
      case "CopyStmt":
      case "CreateTableAsStmt":
        return this.statement(n.query, outer);
      case "ExplainStmt":
        return undefined;
      default:
        return undefined;
    }
  }

  private select(n: Node, outer?: Scope): OutputTaint {
    if (n.op && n.op !== "SETOP_NONE") {
      const l = this.select(unwrap(n.larg)?.[1] ?? (n.larg as Node), outer);
      const r = this.select(unwrap(n.rarg)?.[1] ?? (n.rarg as Node), outer);
      const len = Math.max(l.entries.length, r.entries.length);
      const star = l.hasStar || r.hasStar;
      // Positions line up across the branches unless a star makes their widths unknown.
      const entries = Array.from({ length: len }, (_, i) => (star ? l.anyTainted || r.anyTainted : (l.entries[i] ?? false) || (r.entries[i] ?? false)));
      return { entries, names: l.names, hasStar: l.hasStar || r.hasStar, anyTainted: l.anyTainted || r.anyTainted };
    }
    const scope = new Scope(this.ctes(n.withClause, outer), outer);
    this.addFrom(scope, list(n.fromClause));
    if (n.valuesLists) {
      const rows = list(n.valuesLists).map((row) => list(unwrap(row)?.[1]?.items));
      const width = Math.max(0, ...rows.map((r) => r.length));
      const entries = Array.from({ length: width }, (_, i) => rows.some((r) => this.expr(r[i], scope)));
      return { entries, names: entries.map(() => undefined), hasStar: false, anyTainted: entries.some(Boolean) };
    }
    return this.targets(list(n.targetList), scope);
  }

  private targets(targetList: unknown[], scope: Scope): OutputTaint {
    const entries: boolean[] = [];
    const names: (string | undefined)[] = [];
    let hasStar = false;
    for (const t of targetList) {
      const rt = unwrap(t)?.[1];
      const val = rt?.val;
      const ref = unwrap(val);
      if (ref?.[0] === "ColumnRef") {
        const { names: parts, star } = fieldNames(ref[1].fields);
        if (star) hasStar = true;
        names.push(typeof rt?.name === "string" ? rt.name : star ? undefined : parts[parts.length - 1]);
      } else {
        names.push(typeof rt?.name === "string" ? rt.name : undefined);
      }
      entries.push(this.expr(val, scope));
    }
    return { entries, names, hasStar, anyTainted: entries.some(Boolean) };
  }

  private ctes(withClause: unknown, outer?: Scope): Map<string, RelationTaint> {
    const map = new Map<string, RelationTaint>();
    if (!isObj(withClause)) return map;
    const recursive = withClause.recursive === true;
    const scope = new Scope(map, outer);
    const ctes = list(withClause.ctes).map((c) => unwrap(c)?.[1]).filter(isObj);
    // A recursive CTE refers to itself: two passes reach the fixed point for taint (a boolean per column).
    for (let pass = 0; pass < (recursive ? 2 : 1); pass++) {
      for (const c of ctes) {
        const out = this.statement(c.ctequery, scope);
        if (typeof c.ctename === "string") map.set(c.ctename, out ? derived(out, fieldNames(c.aliascolnames).names) : TAINTED);
      }
    }
    return map;
  }

  private addFrom(scope: Scope, items: unknown[]): void {
    for (const item of items) {
      const w = unwrap(item) ?? (isObj(item) && typeof item.relname === "string" ? ["RangeVar", item] as [string, Node] : undefined);
      if (!w) continue;
      const [type, n] = w;
      const alias = isObj(n.alias) && typeof n.alias.aliasname === "string" ? n.alias.aliasname : undefined;
      switch (type) {
        case "RangeVar": {
          const name = String(n.relname);
          const schema = typeof n.schemaname === "string" ? n.schemaname : undefined;
          const rel = (schema === undefined ? scope.cte(name) : undefined) ?? this.lookup(schema, name) ?? CLEAN;
          scope.rels.set(alias ?? name, rel);
          break;
        }
        case "RangeSubselect": {
          // Not LATERAL: the subquery sees this level's CTEs and outer levels, not its sibling FROM items.
          const out = this.statement(n.subquery, n.lateral ? scope : new Scope(scope.ctes, scope.parent));
          scope.rels.set(alias ?? `?subquery${scope.rels.size}`, out ? derived(out, aliasColumnNames(n.alias)) : TAINTED);
          break;
        }
        case "RangeFunction": {
          const tainted = this.expr(n.functions, scope);
          scope.rels.set(alias ?? `?function${scope.rels.size}`, tainted ? { column: () => true, any: true } : CLEAN);
          break;
        }
        case "JoinExpr":
          this.addFrom(scope, [n.larg, n.rarg]);
          break;
        default:
          // RangeTableSample and friends wrap a relation; a table function with its own syntax
          // (XMLTABLE, JSON_TABLE) yields columns computed from its expressions.
          if (n.relation !== undefined) this.addFrom(scope, [n.relation]);
          else scope.rels.set(alias ?? `?function${scope.rels.size}`, this.expr(n, scope) ? TAINTED : CLEAN);
      }
    }
  }

  /** Whether an expression references masked data. */
  private expr(e: unknown, scope: Scope): boolean {
    if (Array.isArray(e)) return e.some((x) => this.expr(x, scope));
    if (!isObj(e)) return false;
    const w = unwrap(e);
    if (w) {
      const [type, n] = w;
      if (type === "ColumnRef") return this.columnRef(n, scope);
      if (type === "SubLink") {
        const out = this.statement(n.subselect, scope);
        return (out?.anyTainted ?? false) || this.expr(n.testexpr, scope);
      }
      if (type === "SelectStmt") return this.statement(e, scope)?.anyTainted ?? false;
      if (type === "FuncCall" && this.readsByName(n)) return true;
      return Object.values(n).some((v) => this.expr(v, scope));
    }
    return Object.values(e).some((v) => this.expr(v, scope));
  }

  /**
   * table_to_xml('customers', ...) and friends read a table, schema or query named in a string:
   * the analysis cannot see what, so their output counts as masked whenever masking has column rules.
   */
  private readsByName(n: Node): boolean {
    const name = fieldNames(n.funcname).names.at(-1)?.toLowerCase() ?? "";
    return this.maskingByName && /^(table|query|cursor|schema|database)_to_xml/.test(name);
  }

  private columnRef(n: Node, scope: Scope): boolean {
    const { names, star } = fieldNames(n.fields);
    if (names.length === 0) return star && scope.all().some((r) => r.any);
    if (star) {
      const rel = scope.find(names[names.length - 1]!);
      return rel ? rel.any : scope.all().some((r) => r.any);
    }
    if (names.length === 1) {
      const name = names[0]!;
      // `c` may be a column, or a whole-row reference to relation `c`: either way.
      const asRow = scope.find(name);
      return (asRow?.any ?? false) || scope.all().some((r) => r.column(name));
    }
    const rel = scope.find(names[names.length - 2]!);
    const col = names[names.length - 1]!;
    return rel ? rel.column(col) : scope.all().some((r) => r.column(col));
  }
}

/** Relation names a statement mentions (schema when written), for the catalog to resolve first. */
export function relationNames(tree: unknown): Array<{ schema?: string; name: string }> {
  const out = new Map<string, { schema?: string; name: string }>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) { v.forEach(visit); return; }
    if (!isObj(v)) return;
    if (typeof v.relname === "string") {
      const schema = typeof v.schemaname === "string" ? v.schemaname : undefined;
      out.set(`${schema ?? ""}.${v.relname}`, schema ? { schema, name: v.relname } : { name: v.relname });
    }
    for (const x of Object.values(v)) visit(x);
  };
  visit(tree);
  return [...out.values()];
}
