/**
 * Identity test support: a real oidc-provider (v9) issuing JWT access tokens through the
 * client-credentials grant, a tiny JSON server to serve discovery documents and key sets the
 * test controls (key rotation, outages), and helpers to make keys and sign tokens.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";

// ---------------------------------------------------------------------------------------------
// Keys and tokens

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  privateJwk: JWK;
  /** Public JWK with kid, alg and use set, ready for a JWKS. */
  publicJwk: JWK;
}

let kidCounter = 0;

export async function generateTestKey(alg = "RS256", kid = `test-key-${++kidCounter}`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: "sig" };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, privateJwk, publicJwk };
}

export interface SignOptions {
  /** Header alg; defaults to the key's alg. */
  alg?: string;
  /** Header kid; defaults to the key's kid, `null` leaves it out. */
  kid?: string | null;
  /** Sets iat to now (default true). */
  iat?: boolean;
}

/** Signs exactly the given claims (no defaults are added except iat), so tests control them all. */
export async function signToken(key: TestKey | { privateKey: CryptoKey | Uint8Array; kid: string; alg: string }, payload: JWTPayload, opts: SignOptions = {}): Promise<string> {
  const header: { alg: string; kid?: string; typ: string } = { alg: opts.alg ?? key.alg, typ: "JWT" };
  const kid = opts.kid === undefined ? key.kid : opts.kid;
  if (kid !== null) header.kid = kid;
  const jwt = new SignJWT(payload).setProtectedHeader(header);
  if (opts.iat !== false && payload.iat === undefined) jwt.setIssuedAt();
  return jwt.sign(key.privateKey);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

// ---------------------------------------------------------------------------------------------
// A JSON server the test controls

export interface JsonServer {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** Serves `body` as JSON with `status` at `path` from now on. */
  set(path: string, body: unknown, status?: number): void;
  /** How many requests `path` has received. */
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startJsonServer(): Promise<JsonServer> {
  const routes = new Map<string, { status: number; body: string }>();
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(route.status, { "content-type": "application/json" }).end(route.body);
  });
  const url = await listen(server);
  return {
    url,
    set(path, body, status = 200) {
      routes.set(path, { status, body: JSON.stringify(body) });
    },
    hits: (path) => counts.get(path) ?? 0,
    close: () => stop(server),
  };
}

// ---------------------------------------------------------------------------------------------
// oidc-provider

export interface OidcProviderOptions {
  clientId?: string;
  clientSecret?: string;
  /** Audience of the access tokens; "portcullis" when omitted. */
  audience?: string;
  /** Groups claim added to every access token. */
  groups?: string[];
  /** More claims added to every access token (e.g. run context). */
  claims?: Record<string, unknown>;
  /** Access token lifetime in seconds (default 600). */
  ttlSeconds?: number;
  /**
   * Also accept RFC 8693 token exchange (a grant oidc-provider lets one register): a valid access
   * token of this provider is exchanged for one carrying the run claims sent with the request.
   */
  tokenExchange?: boolean;
}

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const RUN_CLAIMS = ["graph_id", "thread_id", "run_id"] as const;

export interface OidcProvider {
  /** http://127.0.0.1:PORT — what tokens carry as iss. */
  issuer: string;
  clientId: string;
  /** Runs the client-credentials grant; returns the access token (a JWT). */
  getToken(extraParams?: Record<string, string>): Promise<string>;
  /** The provider's public signing keys. */
  jwks: { keys: JWK[] };
  /** The provider's private signing key, to forge tokens signed with the real key. */
  privateJwk: JWK;
  /** Same key, imported for jose's SignJWT. */
  signingKey: TestKey;
  close(): Promise<void>;
}

export const RESOURCE = "urn:portcullis";

export async function startOidcProvider(opts: OidcProviderOptions = {}): Promise<OidcProvider> {
  const clientId = opts.clientId ?? "agent-1";
  const clientSecret = opts.clientSecret ?? "agent-1-secret-that-is-long-enough";
  const audience = opts.audience ?? "portcullis";
  const signingKey = await generateTestKey("RS256", "oidc-provider-key");

  // The issuer must contain the port, so the port is taken before the provider exists.
  const server = createServer();
  const issuer = await listen(server);

  const config = {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ["client_credentials", ...(opts.tokenExchange ? [TOKEN_EXCHANGE] : [])],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      // Must name an algorithm the provider holds a key for, or the client is refused.
      id_token_signed_response_alg: "RS256",
      scope: "gateway",
    }],
    jwks: { keys: [signingKey.privateJwk] },
    scopes: ["gateway"],
    ttl: { ClientCredentials: opts.ttlSeconds ?? 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Without a resource the provider issues opaque tokens; defaulting one makes every
        // client-credentials token a JWT for the resource server below.
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "gateway",
          audience,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    // Spread under the registered claims by oidc-provider, so these cannot replace sub/iss/aud.
    extraTokenClaims: () => ({ groups: opts.groups ?? [], ...opts.claims }),
  };

  const provider = await quietly(async () => {
    // A non-literal specifier: oidc-provider ships no types, and this file needs none of them.
    const specifier = "oidc-provider";
    const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: unknown) => { callback(): (...args: unknown[]) => void } };
    return new Provider(issuer, config);
  });
  if (opts.tokenExchange) registerTokenExchange(provider, issuer, signingKey, audience, opts.ttlSeconds ?? 600);
  server.on("request", provider.callback());

  const publicJwk = signingKey.publicJwk;
  return {
    issuer,
    clientId,
    async getToken(extraParams = {}) {
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ grant_type: "client_credentials", scope: "gateway", ...extraParams }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || typeof body.access_token !== "string") {
        throw new Error(`token request failed: HTTP ${res.status} ${body.error ?? ""} ${body.error_description ?? ""}`);
      }
      return body.access_token;
    },
    jwks: { keys: [publicJwk] },
    privateJwk: signingKey.privateJwk,
    signingKey,
    close: () => stop(server),
  };
}

interface ExchangeContext {
  oidc: { params: Record<string, string | undefined> };
  body: unknown;
  status: number;
}

/** RFC 8693 on oidc-provider: verify the subject token with the provider's key, issue one with the run claims. */
function registerTokenExchange(provider: unknown, issuer: string, key: TestKey, audience: string, ttl: number): void {
  const p = provider as { registerGrantType(name: string, handler: (ctx: ExchangeContext, next: () => Promise<void>) => Promise<void>, params: Set<string>): void };
  p.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { subject_token: subject, subject_token_type: type } = ctx.oidc.params;
    let claims: JWTPayload;
    try {
      if (type !== "urn:ietf:params:oauth:token-type:access_token" || !subject) throw new Error("bad subject");
      ({ payload: claims } = await jwtVerify(subject, key.publicKey, { issuer, audience }));
    } catch {
      ctx.status = 400;
      ctx.body = { error: "invalid_grant", error_description: "the subject token is not valid" };
      return;
    }
    const run: Record<string, string> = {};
    for (const c of RUN_CLAIMS) if (ctx.oidc.params[c]) run[c] = ctx.oidc.params[c]!;
    const now = nowSeconds();
    const token = await signToken(key, { iss: issuer, aud: audience, sub: claims.sub, groups: claims.groups, ...run, act: { sub: claims.sub }, nbf: now, exp: now + ttl, jti: randomUUID() });
    ctx.body = { access_token: token, issued_token_type: "urn:ietf:params:oauth:token-type:access_token", token_type: "Bearer", expires_in: ttl };
  }, new Set(["subject_token", "subject_token_type", "requested_token_type", "resource", "audience", ...RUN_CLAIMS]));
}

/**
 * oidc-provider prints notices for development-only defaults (in-memory adapter, runtime
 * version) on import and construction. They are expected in tests, so only they are dropped.
 */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const { warn, info } = console;
  const filter = (write: (...args: unknown[]) => void) => (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].includes("oidc-provider ")) return;
    write(...args);
  };
  console.warn = filter(warn);
  console.info = filter(info);
  try {
    return await fn();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

async function listen(server: Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
