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
 * For HTTP: the single-use key is the method, the canonical path and query, and the body; the
 * window key is the method and the path (any query, any body).
 */
export function httpOperationKeys(method: string, target: string, body: Buffer): OperationKeys {
  const once = createHash("sha256").update(`http\0${method}\0${target}\0`).update(body).digest("hex");
  const shape = createHash("sha256").update(`http\0${method}\0${target.split("?")[0]}`).digest("hex");
  return { onceKey: `http:${once}`, windowKey: `http-shape:${shape}` };
}
