/**
 * Tokens from a real OIDC provider (oidc-provider, client-credentials grant, JWT access tokens)
 * at the PostgreSQL listener: the genuine token opens a session; every forgery gets 28P01.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { type OidcProvider, generateTestKey, nowSeconds, signToken, startOidcProvider } from "../support/oidc.js";

const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe("postgres login with tokens from a real OIDC provider", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let idp: OidcProvider;
  before(async () => {
    idp = await startOidcProvider({ groups: ["agents"], claims: { run_id: "run-7" } });
    target = await startTarget();
    gw = await startTestGateway({
      target,
      overrides: {
        identity: {
          dev_issuer: false,
          issuers: [{ issuer: idp.issuer, audience: "portcullis", algorithms: ["RS256"], max_token_age: "15m" }],
        },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
    await idp?.close();
  });

  /** dev_issuer is off, so the token must travel over TLS even on loopback. */
  const config = (password: string) => ({ ...gw.clientConfig(password), ssl: { rejectUnauthorized: false } });

  it("accepts the provider's client-credentials token and records its claims", async () => {
    const client = new pg.Client(config(await idp.getToken()));
    await client.connect();
    assert.equal((await client.query("select 1 as one")).rows[0].one, 1);
    const live = gw.gw.context.sessions.list().at(-1)!;
    assert.equal(live.principal.sub, idp.clientId);
    assert.equal(live.principal.iss, idp.issuer);
    assert.deepEqual(live.principal.groups, ["agents"]);
    assert.equal(live.principal.run.run_id, "run-7");
    await client.end();
  });

  it("refuses expired, premature, wrong-audience, wrong-issuer, unpinned-alg, alg:none and unknown-key tokens with 28P01", async () => {
    const now = nowSeconds();
    const base = { iss: idp.issuer, aud: "portcullis", sub: "mallory", groups: ["agents"], iat: now, exp: now + 300 };
    const real = idp.signingKey;
    const stranger = await generateTestKey("RS256", real.kid);
    const es = await generateTestKey("ES256");
    const forgeries: Record<string, string> = {
      expired: await signToken(real, { ...base, iat: now - 600, exp: now - 300 }),
      notYetValid: await signToken(real, { ...base, nbf: now + 3600 }),
      otherAudience: await signToken(real, { ...base, aud: "someone-else" }),
      otherIssuer: await signToken(real, { ...base, iss: "http://127.0.0.1:1/" }),
      unpinnedAlgorithm: await signToken(es, base),
      algNone: `${b64url({ alg: "none", typ: "JWT" })}.${b64url(base)}.`,
      keyNotInJwks: await signToken(stranger, base),
      tooOld: await signToken(real, { ...base, iat: now - 3600, exp: now + 300 }),
    };
    for (const [name, token] of Object.entries(forgeries)) {
      const client = new pg.Client(config(token));
      const err = await client.connect().then(() => undefined, (e: Error & { code?: string }) => e);
      await client.end().catch(() => {});
      assert.ok(err, `${name}: accepted`);
      assert.equal(err.code, "28P01", `${name}: ${err.message}`);
      assert.equal(err.message, "portcullis: invalid token", `${name}: leaks why`);
    }
    const logs = gw.logs.join("\n");
    for (const token of Object.values(forgeries)) assert.ok(!logs.includes(token), "a token reached the logs");
  });

  it("ends a session when its token passes the issuer's max_token_age, not only at exp", async () => {
    const now = nowSeconds();
    // Issued 15 minutes minus 2 seconds ago: max_token_age (15m) runs out long before exp.
    const token = await signToken(idp.signingKey, { iss: idp.issuer, aud: "portcullis", sub: "aging-agent", groups: ["agents"], iat: now - 898, exp: now + 600 });
    const client = new pg.Client(config(token));
    const errors: Array<Error & { code?: string }> = [];
    client.on("error", (e) => errors.push(e));
    await client.connect();
    await client.query("select 1");
    await new Promise((r) => setTimeout(r, 3000));
    const late = await client.query("select 1").then(() => undefined, (e: Error & { code?: string }) => e);
    assert.ok(late, "the session no longer answers");
    assert.ok(errors.some((e) => e.code === "PX003") || late?.code === "PX003", errors.map((e) => `${e.code} ${e.message}`).join("; "));
    await client.end().catch(() => {});
  });
});
