/**
 * The connection's credentials, added to each request toward the target: fixed headers, HTTP
 * basic auth, query parameters, or an OAuth2 client-credentials token that the gateway fetches,
 * caches and refreshes before it expires. The agent sends only its own short-lived token.
 */
import type { HttpConnection } from "../../config/schema.js";
import { PortcullisError } from "../../errors.js";

/** Refresh this long before the token's expiry. */
const REFRESH_MARGIN_MS = 30_000;

interface CachedToken {
  value: string;
  expiresAt: number;
}

export class CredentialInjector {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();

  /** Adds the connection's credentials to `headers` and `url` (in place). */
  async apply(connection: HttpConnection, headers: Record<string, string | string[]>, url: URL): Promise<void> {
    const c = connection.credentials;
    for (const [name, value] of Object.entries(c.headers ?? {})) headers[name.toLowerCase()] = value;
    if (c.basic) headers.authorization = `Basic ${Buffer.from(`${c.basic.username}:${c.basic.password}`).toString("base64")}`;
    for (const [name, value] of Object.entries(c.query ?? {})) url.searchParams.set(name, value);
    if (c.oauth2) headers.authorization = `Bearer ${(await this.oauth2Token(connection)).value}`;
  }

  private async oauth2Token(connection: HttpConnection): Promise<CachedToken> {
    const cfg = connection.credentials.oauth2!;
    const key = `${connection.name}\0${cfg.token_url}\0${cfg.client_id}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt - REFRESH_MARGIN_MS > Date.now()) return cached;
    // One fetch at a time per connection, however many requests are waiting for it.
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchToken(cfg).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return token;
  }

  private async fetchToken(cfg: NonNullable<HttpConnection["credentials"]["oauth2"]>): Promise<CachedToken> {
    const body = new URLSearchParams({ grant_type: "client_credentials" });
    if (cfg.scope) body.set("scope", cfg.scope);
    if (cfg.audience) body.set("audience", cfg.audience);
    let res: Response;
    try {
      res = await fetch(cfg.token_url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${encodeURIComponent(cfg.client_id)}:${encodeURIComponent(cfg.client_secret)}`).toString("base64")}` },
        body,
        signal: AbortSignal.timeout(10_000),
        redirect: "error",
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new PortcullisError("E_UPSTREAM_AUTH", `cannot reach the token endpoint ${new URL(cfg.token_url).origin} (${cause ?? (err as Error).name})`);
    }
    const json = (await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown };
    if (!res.ok || typeof json.access_token !== "string") {
      throw new PortcullisError("E_UPSTREAM_AUTH", `the token endpoint ${new URL(cfg.token_url).origin} refused the gateway (HTTP ${res.status})`);
    }
    const ttl = typeof json.expires_in === "number" && json.expires_in > 0 ? json.expires_in * 1000 : 5 * 60_000;
    return { value: json.access_token, expiresAt: Date.now() + ttl };
  }
}
