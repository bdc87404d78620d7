/**
 * What an approval is bound to, per kind of operation. For SQL, the single-use key is the exact
 * text and parameter values: approving `COPY (SELECT * FROM customers WHERE id = 1)` does not approve `... id = 2`,
 * although libpg-query gives both one fingerprint. The window key is that fingerprint: a
 * `grant: window 30m` lets the same statement shape run, with any values, for that long.
 */
import { createHash } from "node:crypto";
import { fingerprintSql } from "../policy/sql/classify.js";

export interface OperationKeys {
  onceKey: string;
  windowKey: string;
}

export function sqlOperationKeys(text: string, params?: Buffer): OperationKeys {
  const once = createHash("sha256").update("sql\0").update(text).update("\0");
  if (params) once.update(params);
  const fingerprint = fingerprintSql(text);
  return {
    onceKey: `sql:${once.digest("hex")}`,
    windowKey: fingerprint ? `sql-fp:${fingerprint}` : `sql-text:${createHash("sha256").update(text).digest("hex")}`,
  };
}

/**
 * For HTTP: the single-use key is the method, the canonical path and query, the headers the target
 * will act on (`headers`, as forwarded: approving a request with `X-Env: staging` does not approve
 * it with `X-Env: prod`) and the body; the window key is the method and the path (any query, any
 * header, any body).
 */
export function httpOperationKeys(method: string, target: string, headers: Readonly<Record<string, string>>, body: Buffer): OperationKeys {
  const once = createHash("sha256").update(`http\0${method}\0${target}\0`);
  for (const name of Object.keys(headers).sort()) once.update(`${name}\0${headers[name]}\0`);
  once.update("\0").update(body);
  const shape = createHash("sha256").update(`http\0${method}\0${target.split("?")[0]}`).digest("hex");
  return { onceKey: `http:${once.digest("hex")}`, windowKey: `http-shape:${shape}` };
}

/**
 * The keys of one operation under one rule. A grant is spent only by an operation the same rule
 * asked approval for: what one rule's approvers allowed (a staging rule's, say) does not let the
 * same request through where another rule, with other approvers, applies, nor after a reload has
 * put it under another rule.
 */
export function ruleBoundKeys(keys: OperationKeys, rule: string): OperationKeys {
  const bind = (key: string) => `${key.slice(0, key.indexOf(":"))}:${createHash("sha256").update(`rule\0${rule}\0${key}`).digest("hex")}`;
  return { onceKey: bind(keys.onceKey), windowKey: bind(keys.windowKey) };
}
