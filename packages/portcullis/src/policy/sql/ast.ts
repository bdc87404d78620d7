/** Reading libpg-query's JSON parse trees: nodes are `{ "TypeName": { ...fields } }`. */

export type Node = Record<string, unknown>;

export const isObj = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/** The single PascalCase key of a wrapped node: {"SelectStmt": {...}} → ["SelectStmt", {...}]. */
export function unwrap(v: unknown): [string, Node] | undefined {
  if (!isObj(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const k = keys[0]!;
  const inner = v[k];
  return /^[A-Z]/.test(k) && isObj(inner) ? [k, inner] : undefined;
}

/** The String nodes of a list (a qualified name's parts), in order; other nodes are skipped. */
export function strings(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const w = unwrap(item);
    return w && w[0] === "String" && typeof w[1].sval === "string" ? [w[1].sval] : [];
  });
}

/** The text of a string constant ('abc', E'abc', $$abc$$ all parse to one), or undefined. */
export function stringConstant(v: unknown): string | undefined {
  const w = unwrap(v);
  return w?.[0] === "A_Const" && isObj(w[1].sval) && typeof w[1].sval.sval === "string" ? w[1].sval.sval : undefined;
}
