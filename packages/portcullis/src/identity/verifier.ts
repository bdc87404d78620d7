/**
 * Bearer token verification (SPEC §3). The issuer is picked by the token's unverified `iss`,
 * then everything that matters is pinned from config, never taken from the token: the key set,
 * the algorithms, the audience and the issuer itself. Nothing here logs: the caller decides
 * what to record, and error messages never contain the token.
 */
import { createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose";
import type { Config, IssuerConfig } from "../config/schema.js";
import { PortcullisError } from "../errors.js";
import { toPrincipal } from "./claims.js";
import { DEV_ISSUER_ALG, DEV_ISSUER_AUDIENCE, DEV_ISSUER_ISS, type DevIssuer } from "./dev-issuer.js";
import { type BackoffOptions, FailureBackoff, createJwksUriResolver } from "./discovery.js";
import type { Principal, TokenVerifier } from "./principal.js";

export type IdentityConfig = Pick<Config["identity"], "issuers" | "dev_issuer">;

export interface TokenVerifierOptions {
  /** Used only when identity.dev_issuer is true (the config stays the authority); required then. */
  devIssuer?: DevIssuer;
  /** Timeout of each discovery and JWKS request; 5000 when omitted. */
  fetchTimeoutMs?: number;
  /**
   * Least time between JWKS re-fetches caused by a token whose key is unknown; 30000 when
   * omitted. It bounds what a flood of tokens with made-up key ids can cost the provider.
   */
  jwksCooldownMs?: number;
  /**
   * After a failed discovery or JWKS request, how long an issuer's endpoint is left alone
   * (tokens that need it are refused meanwhile); 5000 when omitted. Bounds what an outage, or a
   * flood of connections during one, costs the provider: one request per issuer per interval.
   */
  failureRetryMs?: number;
  /** Tests only: the clock of the failure back-off. */
  now?: () => number;
}

/** Far above any real token; refuses huge inputs before any parsing. */
export const MAX_TOKEN_LENGTH = 64 * 1024;

/** Clock skew allowed for dev issuer tokens, in seconds. */
const DEV_CLOCK_TOLERANCE_S = 5;

interface TrustedIssuer {
  issuer: string;
  groupsClaim: string;
  getKey: JWTVerifyGetKey;
  options: JWTVerifyOptions;
}

export function createTokenVerifier(identity: IdentityConfig, opts: TokenVerifierOptions = {}): TokenVerifier {
  const fetchTimeoutMs = Math.round(opts.fetchTimeoutMs ?? 5_000);
  const jwksCooldownMs = opts.jwksCooldownMs ?? 30_000;
  const backoff: BackoffOptions = { retryMs: opts.failureRetryMs ?? 5_000, ...(opts.now ? { now: opts.now } : {}) };
  const trusted = new Map<string, TrustedIssuer>();
  const add = (entry: TrustedIssuer): void => {
    if (trusted.has(entry.issuer)) {
      throw new PortcullisError("E_CONFIG_INVALID", `identity: issuer ${entry.issuer} is configured more than once`);
    }
    trusted.set(entry.issuer, entry);
  };

  for (const cfg of identity.issuers) add(remoteIssuer(cfg, fetchTimeoutMs, jwksCooldownMs, backoff));
  if (identity.dev_issuer) {
    if (!opts.devIssuer) throw new TypeError("identity.dev_issuer is enabled but no DevIssuer was passed to createTokenVerifier");
    add(devIssuerEntry(opts.devIssuer));
  }

  // Verified tokens, until the earliest of their expiry, their max_token_age and a few minutes:
  // an HTTP agent presents the same token on every request, and a signature check per request
  // is most of what an HTTP request costs the gateway. Revocation is checked per operation
  // regardless (core/containment.ts), so a cached token is never a revoked identity's way in.
  const cache = new Map<string, { principal: Principal; validUntil: number }>();
  const copy = (p: Principal): Principal => ({ ...p, groups: [...p.groups], run: { ...p.run } });

  return {
    async verify(token: string): Promise<Principal> {
      const hit = typeof token === "string" ? cache.get(token) : undefined;
      if (hit) {
        if (hit.validUntil > Date.now()) return copy(hit.principal);
        cache.delete(token);
      }
      if (typeof token !== "string" || token.length === 0) throw invalid("no token");
      if (token.length > MAX_TOKEN_LENGTH) throw invalid(`token longer than ${MAX_TOKEN_LENGTH} characters`);
      let iss: unknown;
      try {
        iss = decodeJwt(token).iss;
      } catch {
        throw invalid("not a signed JWT");
      }
      if (typeof iss !== "string") throw invalid('token has no "iss" claim');
      const entry = trusted.get(iss);
      if (!entry) throw invalid(`token issuer ${quote(iss)} is not configured`);
      let payload;
      try {
        ({ payload } = await jwtVerify(token, entry.getKey, entry.options));
      } catch (err) {
        throw describeFailure(err, token, entry.issuer);
      }
      const principal = toPrincipal(payload, entry.groupsClaim);
      const maxAge = entry.options.maxTokenAge;
      const bounds = [principal.exp * 1000, Date.now() + VERIFIED_CACHE_MS];
      if (typeof maxAge === "number" && typeof payload.iat === "number") {
        bounds.push((payload.iat + maxAge) * 1000);
        if (payload.iat + maxAge < principal.exp) principal.maxAgeUntil = payload.iat + maxAge;
      }
      if (cache.size >= VERIFIED_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
      cache.set(token, { principal, validUntil: Math.min(...bounds) });
      return copy(principal);
    },
  };
}

/**
 * How long a verified token is trusted without checking its signature again, at most: also how
 * long a key removed from an issuer's JWKS may still vouch for tokens it signed before (revoke
 * the identities for an immediate stop).
 */
const VERIFIED_CACHE_MS = 30_000;
const VERIFIED_CACHE_ENTRIES = 10_000;

function remoteIssuer(cfg: IssuerConfig, fetchTimeoutMs: number, jwksCooldownMs: number, backoff: BackoffOptions): TrustedIssuer {
  const jwksUri = cfg.jwks_uri
    ? { get: async () => new URL(cfg.jwks_uri!) }
    : createJwksUriResolver(cfg.issuer, fetchTimeoutMs, backoff);
  // Created once the URL is known and then kept: jose's set caches keys, re-fetches on an
  // unknown kid (rotation) and applies the cooldown. Its fetches go through the back-off, so
  // keys it already holds keep verifying while the endpoint is failing.
  let jwks: JWTVerifyGetKey | undefined;
  const fetchKeys = backedOffFetch(cfg.issuer, new FailureBackoff(backoff.retryMs, backoff.now));
  const getKey: JWTVerifyGetKey = async (header, token) => {
    const url = await jwksUri.get();
    jwks ??= createRemoteJWKSet(url, { timeoutDuration: fetchTimeoutMs, cooldownDuration: jwksCooldownMs, [customFetch]: fetchKeys });
    return jwks(header, token);
  };
  const options: JWTVerifyOptions = {
    issuer: cfg.issuer,
    audience: cfg.audience,
    algorithms: [...cfg.algorithms],
    clockTolerance: cfg.clock_tolerance / 1000,
    requiredClaims: ["exp", "sub"],
  };
  if (cfg.max_token_age !== undefined) options.maxTokenAge = cfg.max_token_age / 1000;
  return { issuer: cfg.issuer, groupsClaim: cfg.groups_claim, getKey, options };
}

/**
 * The JWKS fetch, failing fast while the endpoint failed recently. A failure is a network error,
 * a timeout, a status other than 200 or a body that is not a key set; the answer is read here
 * (to judge it) and handed to jose unchanged.
 */
function backedOffFetch(issuer: string, failures: FailureBackoff): typeof fetch {
  return async (input, init) => {
    const blocked = failures.blocked();
    if (blocked) {
      throw invalid(`cannot verify token: fetching the keys of issuer ${issuer} failed; next attempt in ${Math.ceil(blocked.retryInMs / 1000)}s`);
    }
    let res: Response;
    let body: string;
    try {
      res = await fetch(input, init);
      body = await res.text();
    } catch (err) {
      failures.failed(err);
      throw err;
    }
    let keySet = false;
    try {
      keySet = Array.isArray((JSON.parse(body) as { keys?: unknown } | null)?.keys);
    } catch {
      /* not JSON: jose says so */
    }
    if (res.status === 200 && keySet) failures.succeeded();
    else failures.failed(new Error(`HTTP ${res.status}`));
    // jose reads nothing but the status of any other answer.
    return res.status === 200 ? new Response(body, { status: 200 }) : res;
  };
}

function devIssuerEntry(dev: DevIssuer): TrustedIssuer {
  return {
    issuer: DEV_ISSUER_ISS,
    groupsClaim: "groups",
    getKey: async () => dev.publicKey,
    options: {
      issuer: DEV_ISSUER_ISS,
      audience: DEV_ISSUER_AUDIENCE,
      algorithms: [DEV_ISSUER_ALG],
      clockTolerance: DEV_CLOCK_TOLERANCE_S,
      requiredClaims: ["exp", "sub"],
    },
  };
}

/** Turns a jose failure into a PortcullisError whose message says what was wrong, token-free. */
function describeFailure(err: unknown, token: string, issuer: string): PortcullisError {
  if (err instanceof PortcullisError) return err;
  if (err instanceof errors.JWTExpired) {
    return err.claim === "iat"
      ? new PortcullisError("E_TOKEN_EXPIRED", `token is older than max_token_age of issuer ${issuer}`)
      : new PortcullisError("E_TOKEN_EXPIRED", "token expired");
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const what: Record<string, string> = {
      aud: "audience is not accepted",
      iss: "issuer does not match",
      nbf: "token is not valid yet",
      iat: '"iat" claim is invalid',
    };
    if (err.reason === "missing") return invalid(`token has no "${err.claim}" claim`);
    return invalid(what[err.claim] ?? `"${err.claim}" claim is invalid`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return invalid(`algorithm ${quote(headerAlg(token))} is not allowed for issuer ${issuer}`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid("signature verification failed");
  if (err instanceof errors.JWKSNoMatchingKey) return invalid(`no key of issuer ${issuer} matches the token`);
  if (err instanceof errors.JWKSMultipleMatchingKeys) return invalid(`several keys of issuer ${issuer} match the token and none verifies it`);
  if (err instanceof errors.JWKSTimeout) return invalid(`cannot verify token: fetching the keys of issuer ${issuer} timed out`);
  if (err instanceof errors.JWKSInvalid) return invalid(`cannot verify token: issuer ${issuer} serves an invalid key set`);
  if (err instanceof errors.JOSENotSupported) return invalid(`unsupported token (algorithm ${quote(headerAlg(token))})`);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return invalid("malformed token");
  // jose reports a non-200 answer or a non-JSON body of the JWKS endpoint with its generic code
  // and a fixed message.
  if (err instanceof errors.JOSEError) {
    return err.code === "ERR_JOSE_GENERIC"
      ? invalid(`cannot verify token: fetching the keys of issuer ${issuer} failed: ${err.message}`)
      : invalid(`token rejected (${err.code})`);
  }
  // Anything else comes from fetching the key set (network error, HTTP error status).
  const name = err instanceof Error ? err.name : "error";
  return invalid(`cannot verify token: fetching the keys of issuer ${issuer} failed (${name})`);
}

function headerAlg(token: string): unknown {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
}

/** Quotes an attacker-controlled value for a log line, bounded in length. */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function invalid(message: string): PortcullisError {
  return new PortcullisError("E_TOKEN_INVALID", message);
}
