import { randomUUID } from "node:crypto";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeJwt, importJWK } from "jose";
import type { IssuerConfig } from "../../src/config/schema.js";
import { isPortcullisError, type ErrorCode } from "../../src/errors.js";
import type { TokenVerifier } from "../../src/identity/principal.js";
import { createTokenVerifier } from "../../src/identity/verifier.js";
import { generateTestKey, nowSeconds, signToken, startJsonServer, startOidcProvider, type JsonServer, type OidcProvider } from "../support/oidc.js";

function issuerConfig(issuer: string, overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return { issuer, audience: "portcullis", groups_claim: "groups", algorithms: ["RS256"], clock_tolerance: 5_000, ...overrides };
}

async function rejects(verifier: TokenVerifier, token: string, code: ErrorCode = "E_TOKEN_INVALID"): Promise<string> {
  const err = await verifier.verify(token).then(() => undefined, (e: unknown) => e);
  assert.ok(isPortcullisError(err, code), `expected ${code}, got ${String(err)}`);
  assert.ok(!err.message.includes(token), "message contains the token");
  return err.message;
}

describe("identity with a real oidc-provider", () => {
  let op: OidcProvider;
  let verifier: TokenVerifier;

  before(async () => {
    op = await startOidcProvider({ clientId: "agent-1", groups: ["eng", "db-readers"], claims: { graph_id: "g-1", thread_id: "t-9", node: "sql" } });
    // No jwks_uri: the verifier discovers it.
    verifier = createTokenVerifier({ issuers: [issuerConfig(op.issuer, { max_token_age: 3_600_000 })], dev_issuer: false });
  });
  after(async () => {
    await op.close();
  });

  it("accepts a client-credentials access token", async () => {
    const token = await op.getToken();
    const claims = decodeJwt(token);
    const p = await verifier.verify(token);
    assert.equal(p.sub, "agent-1", "oidc-provider uses the client_id as sub for client credentials");
    assert.deepEqual(p.groups, ["eng", "db-readers"]);
    assert.equal(p.iss, op.issuer);
    assert.equal(p.jti, claims.jti);
    assert.equal(p.exp, claims.exp);
    assert.deepEqual(p.run, { graph_id: "g-1", thread_id: "t-9", node: "sql" });
  });

  it("refuses the provider's token where another audience is expected", async () => {
    const other = createTokenVerifier({ issuers: [issuerConfig(op.issuer, { audience: "not-portcullis" })], dev_issuer: false });
    await rejects(other, await op.getToken());
  });

  it("refuses the provider's token when RS256 is not pinned", async () => {
    const other = createTokenVerifier({ issuers: [issuerConfig(op.issuer, { algorithms: ["ES256", "EdDSA"] })], dev_issuer: false });
    assert.match(await rejects(other, await op.getToken()), /"RS256" is not allowed/);
  });

  it("checks the claims of a token signed with the provider's real key", async () => {
    const key = { privateKey: await importJWK(op.privateJwk, "RS256"), kid: op.privateJwk.kid!, alg: "RS256" };
    const base = { iss: op.issuer, aud: "portcullis", sub: "forged", exp: nowSeconds() + 60 };
    assert.equal((await verifier.verify(await signToken(key, base))).sub, "forged", "the real key is accepted");
    await rejects(verifier, await signToken(key, { ...base, exp: nowSeconds() - 60 }), "E_TOKEN_EXPIRED");
    await rejects(verifier, await signToken(key, { ...base, aud: "other" }));
    await rejects(verifier, await signToken(key, { ...base, iss: `${op.issuer}/other` }));
    await rejects(verifier, await signToken(key, { ...base, iat: nowSeconds() - 7200 }), "E_TOKEN_EXPIRED");
  });

  it("refuses a token that names the provider but is signed by another key", async () => {
    const impostor = await generateTestKey("RS256", op.privateJwk.kid);
    await rejects(verifier, await signToken(impostor, { iss: op.issuer, aud: "portcullis", sub: "agent-1", exp: nowSeconds() + 60 }));
  });
});

describe("key rotation", () => {
  let server: JsonServer;
  const ISSUER = "https://rotating.example.test";

  before(async () => {
    server = await startJsonServer();
  });
  after(async () => {
    await server.close();
  });

  it("accepts tokens signed with a new key once the JWKS publishes it, and drops retired keys", async () => {
    const oldKey = await generateTestKey("RS256", "2024-01");
    const newKey = await generateTestKey("RS256", "2024-02");
    server.set("/jwks", { keys: [oldKey.publicJwk] });
    // Cooldown 0 so the test need not wait; production keeps jose's 30 s between re-fetches.
    const verifier = createTokenVerifier(
      { issuers: [issuerConfig(ISSUER, { jwks_uri: `${server.url}/jwks` })], dev_issuer: false },
      { jwksCooldownMs: 0 },
    );
    // Each token distinct (jti): a token verified once is trusted for a while without a new check.
    const claims = () => ({ iss: ISSUER, aud: "portcullis", sub: "agent-2", exp: nowSeconds() + 60, jti: randomUUID() });

    assert.equal((await verifier.verify(await signToken(oldKey, claims()))).sub, "agent-2");
    assert.equal(server.hits("/jwks"), 1);

    // Before the new key is published it is unknown.
    await rejects(verifier, await signToken(newKey, claims()));

    // Rotation overlap: both keys published; the unknown kid triggers a re-fetch.
    server.set("/jwks", { keys: [newKey.publicJwk, oldKey.publicJwk] });
    assert.equal((await verifier.verify(await signToken(newKey, claims()))).sub, "agent-2");
    assert.equal((await verifier.verify(await signToken(oldKey, claims()))).sub, "agent-2");

    // The old key retired: its tokens are refused once the set is re-fetched.
    server.set("/jwks", { keys: [newKey.publicJwk] });
    const third = await generateTestKey("RS256", "2024-03");
    await rejects(verifier, await signToken(third, claims())); // unknown kid forces the re-fetch
    await rejects(verifier, await signToken(oldKey, claims()));
    assert.equal((await verifier.verify(await signToken(newKey, claims()))).sub, "agent-2");
  });

  it("with the default cooldown, an unknown kid does not make every token re-fetch the JWKS", async () => {
    const key = await generateTestKey("RS256");
    server.set("/quiet-jwks", { keys: [key.publicJwk] });
    const verifier = createTokenVerifier({ issuers: [issuerConfig(ISSUER, { jwks_uri: `${server.url}/quiet-jwks` })], dev_issuer: false });
    await verifier.verify(await signToken(key, { iss: ISSUER, aud: "portcullis", sub: "s", exp: nowSeconds() + 60 }));
    const stranger = await generateTestKey("RS256");
    for (let i = 0; i < 5; i++) {
      await rejects(verifier, await signToken(stranger, { iss: ISSUER, aud: "portcullis", sub: "s", exp: nowSeconds() + 60 }));
    }
    assert.equal(server.hits("/quiet-jwks"), 1);
  });
});
