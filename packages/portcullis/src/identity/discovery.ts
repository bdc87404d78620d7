/**
 * OIDC discovery of an issuer's jwks_uri. Fetched lazily, so the gateway starts while an
 * identity provider is down, and cached once it succeeded. A failure is never cached: the next
 * token retries, and concurrent tokens share one in-flight request so an outage cannot turn
 * into a request storm against the provider.
 */
import { PortcullisError } from "../errors.js";

export interface JwksUriResolver {
  /** Resolves the issuer's jwks_uri; rejects with E_TOKEN_INVALID when it cannot be had. */
  get(): Promise<URL>;
}

export function discoveryUrl(issuer: string): URL {
  return new URL(`${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`);
}

export function createJwksUriResolver(issuer: string, fetchTimeoutMs: number): JwksUriResolver {
  let resolved: URL | undefined;
  let inFlight: Promise<URL> | undefined;
  return {
    get() {
      if (resolved) return Promise.resolve(resolved);
      inFlight ??= discover(issuer, fetchTimeoutMs).then(
        (url) => {
          resolved = url;
          inFlight = undefined;
          return url;
        },
        (err: unknown) => {
          inFlight = undefined;
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
