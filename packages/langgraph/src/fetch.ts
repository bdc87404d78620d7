/**
 * `portcullisFetch`: a fetch for one HTTP connection of the gateway. Paths are relative to the
 * connection (`/v1/invoices` → `<gateway>/c/<connection>/v1/invoices`); the current token and the
 * run context (`X-Portcullis-Run-*`) are added; the gateway's refusals become typed errors, while
 * the target's own answers (a 404, a 403 of its own) come back as responses.
 */
import { currentRunContext } from "./context.js";
import { fromHttpRefusal } from "./errors.js";
import type { TokenSource } from "./tokens.js";

export interface PortcullisFetchOptions {
  /** The gateway's HTTP listener, e.g. http://127.0.0.1:18080 */
  gateway: string;
  connection: string;
  tokens: TokenSource;
  graphId?: string;
  /** Ask for defer mode (Prefer: respond-async): an approval answers at once with its id. Default true: withApproval turns it into an interrupt. */
  defer?: boolean;
}

export type PortcullisFetch = (path: string, init?: RequestInit) => Promise<Response>;

export function portcullisFetch(o: PortcullisFetchOptions): PortcullisFetch {
  const base = `${o.gateway.replace(/\/+$/, "")}/c/${encodeURIComponent(o.connection)}`;
  return async (path, init = {}) => {
    const ctx = currentRunContext(o.graphId);
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${await o.tokens.token(ctx)}`);
    for (const [k, v] of Object.entries(ctx)) if (v) headers.set(`x-portcullis-run-${k.replace(/_/g, "-")}`, v);
    if (o.defer ?? true) headers.set("prefer", "respond-async");
    const res = await fetch(`${base}${path.startsWith("/") ? path : `/${path}`}`, { ...init, headers });
    const refusal = await fromHttpRefusal(res);
    if (refusal) throw refusal;
    return res;
  };
}
