/**
 * The admin API as the CLI's admin commands reach it: the running gateway's HTTP listener (from
 * `-c FILE`'s gateway.http, or `--url`), with an admin token from PORTCULLIS_TOKEN.
 */
import { loadConfig } from "../config/load.js";
import { CliError } from "./output.js";

export interface ApiTarget {
  config: string;
  url?: string;
}

export function apiBase(t: ApiTarget): string {
  if (t.url) return t.url.replace(/\/+$/, "");
  const http = loadConfig(t.config).gateway.http;
  if (!http) throw new CliError(`${t.config}: gateway.http is not set; pass --url`);
  const host = http.host === "0.0.0.0" || http.host === "::" ? "127.0.0.1" : http.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${http.port}`;
}

export async function callApi<T>(t: ApiTarget, method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
  const token = process.env.PORTCULLIS_TOKEN;
  if (!token) throw new CliError("PORTCULLIS_TOKEN is not set (an admin or approver token, e.g. from `portcullis token issue`)");
  const base = apiBase(t);
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new CliError(`cannot reach the gateway at ${base} (${(err as Error).message})`);
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const msg = (data as { message?: string } | undefined)?.message ?? `HTTP ${res.status}`;
    throw new CliError(`${msg} (HTTP ${res.status})`);
  }
  return data as T;
}
