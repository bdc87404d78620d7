/**
 * OIDC discovery of an issuer's jwks_uri. Fetched lazily, so the gateway starts while an
 * identity provider is down, and cached once it succeeded. Concurrent tokens share one in-flight
 * request, and after a failure the provider is asked again only once `retryMs` have passed
 * (tokens in between are refused with the same error at once), so an outage costs the provider
 * one request per issuer per interval, not one per connection.
 */
import { PortcullisError } from "../errors.js";

export interface JwksUriResolver {
  /** Resolves the issuer's jwks_uri; rejects with E_TOKEN_INVALID when it cannot be had. */
  get(): Promise<URL>;
}

export function discoveryUrl(issuer: string): URL {
  return new URL(`${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`);
}

/**
 * Remembers the last failure of one endpoint for `retryMs`: while it is fresh, callers fail with
 * it instead of asking again. Shared by discovery and the JWKS fetch (verifier.ts).
 */
export class FailureBackoff {
  private failure?: { at: number; err: unknown };

  constructor(private readonly retryMs: number, private readonly now: () => number = Date.now) {}

  /** The failure to answer with now, if the endpoint failed less than retryMs ago. */
  blocked(): { err: unknown; retryInMs: number } | undefined {
    const f = this.failure;
    if (!f) return undefined;
    const retryInMs = f.at + this.retryMs - this.now();
    return retryInMs > 0 ? { err: f.err, retryInMs } : undefined;
  }

  failed(err: unknown): void {
    this.failure = { at: this.now(), err };
  }

  succeeded(): void {
    this.failure = undefined;
  }
}

export interface BackoffOptions {
  retryMs: number;
  /** Tests only: the clock. */
  now?: () => number;
}

export function createJwksUriResolver(issuer: string, fetchTimeoutMs: number, backoff: BackoffOptions): JwksUriResolver {
  let resolved: URL | undefined;
  let inFlight: Promise<URL> | undefined;
  const failures = new FailureBackoff(backoff.retryMs, backoff.now);
  return {
    get() {
      if (resolved) return Promise.resolve(resolved);
      const blocked = failures.blocked();
      if (blocked && !inFlight) return Promise.reject(blocked.err);
      inFlight ??= discover(issuer, fetchTimeoutMs).then(
        (url) => {
          resolved = url;
          inFlight = undefined;
          failures.succeeded();
          return url;
        },
        (err: unknown) => {
          inFlight = undefined;
          failures.failed(err);
          throw err;
        },
      );
      return inFlight;
    },
  };
}

async function discover(issuer: string, fetchTimeoutMs: number): Promise<URL> {
  const url = discoveryUrl(issuer);
  const fail = (why: string): PortcullisError =>
    new PortcullisError("E_TOKEN_INVALID", `cannot verify token: OIDC discovery for issuer ${issuer} failed: ${why}`);
  let doc: unknown;
  try {
    const res = await fetch(url, {
      headers: { accept: "application/json" },
      redirect: "error",
      signal: AbortSignal.timeout(fetchTimeoutMs),
    });
    if (!res.ok) throw fail(`HTTP ${res.status} from ${url.href}`);
    doc = await res.json();
  } catch (err) {
    if (err instanceof PortcullisError) throw err;
    const name = err instanceof Error ? err.name : "error";
    throw fail(name === "TimeoutError" ? `no answer within ${fetchTimeoutMs}ms from ${url.href}` : `${name} fetching ${url.href}`);
  }
  if (doc === null || typeof doc !== "object") throw fail("the document is not a JSON object");
  const { issuer: advertised, jwks_uri: jwksUri } = doc as Record<string, unknown>;
  // OpenID Connect Discovery 1.0 §4.3: the advertised issuer must be exactly the configured one,
  // otherwise a provider could vouch for keys of another issuer.
  if (advertised !== issuer) throw fail(`the document names issuer ${JSON.stringify(advertised)?.slice(0, 200)}`);
  if (typeof jwksUri !== "string" || !URL.canParse(jwksUri)) throw fail("the document has no valid jwks_uri");
  const jwks = new URL(jwksUri);
  if (jwks.protocol !== "https:" && jwks.protocol !== "http:") throw fail("jwks_uri is not an http(s) URL");
  return jwks;
}
