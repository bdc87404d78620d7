/**
 * Where the agent's short-lived token comes from. Every source caches its token and fetches a new
 * one before the old one expires (30 s before, by default), so a run longer than a token's life
 * keeps working:
 *  - clientCredentials: OAuth2 client credentials (RFC 6749 §4.4) with an RFC 8707 `resource`;
 *  - tokenExchange: RFC 8693, trading a subject token for one that carries the run's claims
 *    (graph_id, thread_id, run_id), which the gateway records as signed run context;
 *  - devIssuer: the gateway's built-in dev issuer (its key in data_dir), for local use.
 */
import type { RunContext } from "./context.js";
import { contextKey } from "./context.js";

export interface TokenSource {
  /** A valid token for this run context (sources that do not sign run claims ignore it). */
  token(ctx?: RunContext): Promise<string>;
}

interface Cached {
  value: string;
  expiresAt: number;
}

/** Caches per key; one fetch at a time per key; refreshes `marginMs` before expiry. */
class TokenCache {
  private readonly tokens = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<Cached>>();

  constructor(private readonly marginMs: number) {}

  async get(key: string, fetchToken: () => Promise<Cached>): Promise<string> {
    const hit = this.tokens.get(key);
    if (hit && hit.expiresAt - this.marginMs > Date.now()) return hit.value;
    let p = this.pending.get(key);
    if (!p) {
      p = fetchToken().finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    if (this.tokens.size > 1000) this.tokens.delete(this.tokens.keys().next().value!);
    return t.value;
  }
}

/** The `exp` of a JWT, unverified: only to know when to fetch the next one. */
function jwtExpiry(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown };
    return typeof payload.exp === "number" ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

async function tokenRequest(url: string, form: Record<string, string>, client?: { id: string; secret: string }): Promise<Cached> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(client ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}` } : {}),
    },
    body: new URLSearchParams(form),
    signal: AbortSignal.timeout(15_000),
    redirect: "error",
  });
  const json = (await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown };
  if (!res.ok || typeof json.access_token !== "string") {
    throw new Error(`token endpoint ${new URL(url).origin} refused: HTTP ${res.status}${typeof json.error === "string" ? ` ${json.error}` : ""}`);
  }
  const expiresAt = jwtExpiry(json.access_token) ?? Date.now() + (typeof json.expires_in === "number" ? json.expires_in * 1000 : 300_000);
  return { value: json.access_token, expiresAt };
}

export interface ClientCredentialsOptions {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** RFC 8707 resource indicator: the gateway, as the identity provider knows it. */
  resource?: string;
  scope?: string;
  refreshMarginMs?: number;
}

export function clientCredentials(o: ClientCredentialsOptions): TokenSource {
  const cache = new TokenCache(o.refreshMarginMs ?? 30_000);
  return {
    token: () => cache.get("", () => tokenRequest(o.tokenUrl, {
      grant_type: "client_credentials",
      ...(o.resource ? { resource: o.resource } : {}),
      ...(o.scope ? { scope: o.scope } : {}),
    }, { id: o.clientId, secret: o.clientSecret })),
  };
}

export interface TokenExchangeOptions {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** The token to exchange (the workload's own identity). */
  subject: TokenSource;
  resource?: string;
  audience?: string;
  refreshMarginMs?: number;
}

/** RFC 8693 token exchange; the run claims go as `graph_id`, `thread_id`, `run_id` request parameters. */
export function tokenExchange(o: TokenExchangeOptions): TokenSource {
  const cache = new TokenCache(o.refreshMarginMs ?? 30_000);
  return {
    token: async (ctx = {}) => {
      const subject = await o.subject.token();
      // One token per run (not per node: the node is a hint, not a claim).
      const key = contextKey({ ...ctx, node: "" });
      return cache.get(key, () => tokenRequest(o.tokenUrl, {
        grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token: subject,
        subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
        requested_token_type: "urn:ietf:params:oauth:token-type:access_token",
        ...(o.resource ? { resource: o.resource } : {}),
        ...(o.audience ? { audience: o.audience } : {}),
        ...(ctx.graph_id ? { graph_id: ctx.graph_id } : {}),
        ...(ctx.thread_id ? { thread_id: ctx.thread_id } : {}),
        ...(ctx.run_id ? { run_id: ctx.run_id } : {}),
      }, { id: o.clientId, secret: o.clientSecret }));
    },
  };
}

export interface DevIssuerOptions {
  /** The gateway's data_dir (where dev-issuer.json is). */
  dataDir: string;
  sub: string;
  groups?: string[];
  ttlSeconds?: number;
  refreshMarginMs?: number;
}

/** Tokens from the gateway's dev issuer, with the run's claims signed in. Local use only. */
export function devIssuer(o: DevIssuerOptions): TokenSource {
  const ttl = o.ttlSeconds ?? 600;
  const cache = new TokenCache(o.refreshMarginMs ?? Math.min(30_000, (ttl * 1000) / 3));
  let issuer: Promise<{ issue(opts: { sub: string; groups?: string[]; ttlSeconds?: number; claims?: Record<string, unknown> }): Promise<string> }> | undefined;
  return {
    token: async (ctx = {}) => {
      // `portcullis` is an optional peer: only the dev source needs it.
      issuer ??= import("portcullis").then((m) => m.DevIssuer.open(o.dataDir));
      const iss = await issuer;
      const claims: Record<string, unknown> = {};
      if (ctx.graph_id) claims.graph_id = ctx.graph_id;
      if (ctx.thread_id) claims.thread_id = ctx.thread_id;
      if (ctx.run_id) claims.run_id = ctx.run_id;
      return cache.get(contextKey({ ...ctx, node: "" }), async () => {
        const value = await iss.issue({ sub: o.sub, groups: o.groups ?? [], ttlSeconds: ttl, claims });
        return { value, expiresAt: jwtExpiry(value) ?? Date.now() + ttl * 1000 };
      });
    },
  };
}

/** A fixed token (tests, scripts). */
export function staticToken(token: string): TokenSource {
  return { token: async () => token };
}
