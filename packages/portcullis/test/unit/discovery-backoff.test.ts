/**
 * An identity provider that fails is asked at most once per issuer per interval, however many
 * connections present tokens meanwhile: OIDC discovery and the JWKS fetch alike, against a local
 * HTTP server that counts what it is asked. The interval runs on a test clock.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { IssuerConfig } from "../../src/config/schema.js";
import { isPortcullisError } from "../../src/errors.js";
import { createTokenVerifier } from "../../src/identity/verifier.js";
import { generateTestKey, nowSeconds, signToken, startJsonServer, type JsonServer, type TestKey } from "../support/oidc.js";

const WELL_KNOWN = "/.well-known/openid-configuration";
const RETRY_MS = 60_000;

describe("identity provider failures back off", () => {
  let server: JsonServer;
  let key: TestKey;
  let clock = 1_000_000;
  const now = () => clock;

  before(async () => {
    key = await generateTestKey("ES256");
    server = await startJsonServer();
  });
  after(async () => {
    await server.close();
  });

  const issuer = (overrides: Partial<IssuerConfig> = {}): IssuerConfig => ({
    issuer: server.url, audience: "portcullis", groups_claim: "groups", algorithms: ["ES256"], clock_tolerance: 5_000, ...overrides,
  });
  let n = 0;
  const token = (kid?: string) => signToken(key, { iss: server.url, aud: "portcullis", sub: `agent-${++n}`, exp: nowSeconds() + 60 }, kid ? { kid } : {});
  const refused = async (p: Promise<unknown>) => {
    await assert.rejects(p, (err) => isPortcullisError(err, "E_TOKEN_INVALID"));
  };

  it("discovery: one request per interval while it fails, concurrent or one after another", async () => {
    server.set(WELL_KNOWN, { error: "down" }, 503);
    const verifier = createTokenVerifier({ issuers: [issuer()], dev_issuer: false }, { failureRetryMs: RETRY_MS, now });
    for (let i = 0; i < 20; i++) await refused(verifier.verify(await token()));
    await Promise.all(Array.from({ length: 20 }, async () => refused(verifier.verify(await token()))));
    assert.equal(server.hits(WELL_KNOWN), 1, "40 connections during an outage cost the provider one request");

    clock += RETRY_MS + 1;
    await refused(verifier.verify(await token()));
    assert.equal(server.hits(WELL_KNOWN), 2, "asked again once the interval passed");

    server.set(WELL_KNOWN, { issuer: server.url, jwks_uri: `${server.url}/keys-a` });
    server.set("/keys-a", { keys: [key.publicJwk] });
    await refused(verifier.verify(await token()));
    assert.equal(server.hits(WELL_KNOWN), 2, "a recovered provider is not asked before the interval ends");
    clock += RETRY_MS + 1;
    assert.match((await verifier.verify(await token())).sub, /^agent-/);
    for (let i = 0; i < 5; i++) await verifier.verify(await token());
    assert.equal(server.hits(WELL_KNOWN), 3, "then cached");
  });

  it("JWKS: one request per interval while it fails", async () => {
    server.set("/keys-b", { error: "down" }, 500);
    const verifier = createTokenVerifier({ issuers: [issuer({ jwks_uri: `${server.url}/keys-b` })], dev_issuer: false }, { failureRetryMs: RETRY_MS, now });
    for (let i = 0; i < 20; i++) await refused(verifier.verify(await token()));
    await Promise.all(Array.from({ length: 20 }, async () => refused(verifier.verify(await token()))));
    assert.equal(server.hits("/keys-b"), 1);

    server.set("/keys-b", "not a key set");
    clock += RETRY_MS + 1;
    await refused(verifier.verify(await token()));
    await refused(verifier.verify(await token()));
    assert.equal(server.hits("/keys-b"), 2, "an answer that is not a key set is a failure too");

    server.set("/keys-b", { keys: [key.publicJwk] });
    clock += RETRY_MS + 1;
    await verifier.verify(await token());
    assert.equal(server.hits("/keys-b"), 3);
  });

  it("JWKS: keys already held keep verifying while a re-fetch fails", async () => {
    server.set("/keys-c", { keys: [key.publicJwk] });
    const verifier = createTokenVerifier({ issuers: [issuer({ jwks_uri: `${server.url}/keys-c` })], dev_issuer: false }, { failureRetryMs: RETRY_MS, jwksCooldownMs: 0, now });
    await verifier.verify(await token());
    server.set("/keys-c", { error: "down" }, 503);
    // Unknown key ids make jose re-fetch (rotation); the endpoint fails once, then is left alone.
    for (let i = 0; i < 10; i++) await refused(verifier.verify(await token(`unknown-${i}`)));
    assert.equal(server.hits("/keys-c"), 2);
    assert.match((await verifier.verify(await token())).sub, /^agent-/, "a token signed with a known key still verifies");
  });
});
