import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { base64url, decodeJwt, decodeProtectedHeader, exportSPKI, importJWK, type JWTPayload } from "jose";
import type { IssuerConfig } from "../../src/config/schema.js";
import { isPortcullisError, type ErrorCode } from "../../src/errors.js";
import { parseGroups } from "../../src/identity/claims.js";
import { DEV_ISSUER_ISS, DevIssuer } from "../../src/identity/dev-issuer.js";
import type { TokenVerifier } from "../../src/identity/principal.js";
import { createTokenVerifier } from "../../src/identity/verifier.js";
import { generateTestKey, nowSeconds, signToken, startJsonServer, type JsonServer, type TestKey } from "../support/oidc.js";

const ISSUER = "https://idp.example.test";

function issuerConfig(overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    issuer: ISSUER,
    audience: "portcullis",
    groups_claim: "groups",
    algorithms: ["RS256"],
    clock_tolerance: 5_000,
    ...overrides,
  };
}

/** Asserts a rejection with the given code whose message does not leak the token. */
async function rejects(verifier: TokenVerifier, token: string, code: ErrorCode = "E_TOKEN_INVALID"): Promise<string> {
  let caught: unknown;
  try {
    await verifier.verify(token);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, "token was accepted");
  assert.ok(isPortcullisError(caught), `not a PortcullisError: ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (typeof token === "string" && token.length > 0) {
    assert.ok(!caught.message.includes(token), "message contains the token");
    for (const part of token.split(".")) {
      if (part.length > 16) assert.ok(!caught.message.includes(part), "message contains part of the token");
    }
  }
  assert.equal(caught.cause, undefined, "no cause: jose errors carry the claims");
  return caught.message;
}

describe("DevIssuer", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-identity-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("issues tokens the verifier accepts (round trip)", async () => {
    const dev = await DevIssuer.open(join(dir, "rt"));
    const verifier = createTokenVerifier({ issuers: [], dev_issuer: true }, { devIssuer: dev });
    const before = nowSeconds();
    const token = await dev.issue({
      sub: "alice",
      groups: ["eng", "oncall"],
      claims: { graph_id: "g", thread_id: "t", run_id: "r", node: 5 },
    });
    const p = await verifier.verify(token);
    assert.equal(p.sub, "alice");
    assert.deepEqual(p.groups, ["eng", "oncall"]);
    assert.equal(p.iss, DEV_ISSUER_ISS);
    assert.match(p.jti ?? "", /^[0-9a-f-]{36}$/);
    assert.ok(p.exp >= before + 600 && p.exp <= nowSeconds() + 600);
    assert.deepEqual(p.run, { graph_id: "g", thread_id: "t", run_id: "r" }, "non-string run claims are dropped");
  });

  it("sets iat, nbf, exp, jti and kid", async () => {
    const dev = await DevIssuer.open(join(dir, "rt"));
    const token = await dev.issue({ sub: "bob", ttlSeconds: 30 });
    const header = decodeProtectedHeader(token);
    const payload = decodeJwt(token);
    assert.equal(header.alg, "EdDSA");
    assert.equal(header.kid, dev.kid);
    assert.equal(payload.aud, "portcullis");
    assert.equal(payload.iss, DEV_ISSUER_ISS);
    assert.equal(payload.exp! - payload.iat!, 30);
    assert.equal(payload.nbf, payload.iat);
    assert.equal(typeof payload.jti, "string");
  });

  it("does not let extra claims replace registered ones", async () => {
    const dev = await DevIssuer.open(join(dir, "rt"));
    const verifier = createTokenVerifier({ issuers: [], dev_issuer: true }, { devIssuer: dev });
    const token = await dev.issue({ sub: "carol", groups: ["eng"], claims: { sub: "root", iss: "x", aud: "y", exp: 1, groups: ["admins"] } });
    const p = await verifier.verify(token);
    assert.equal(p.sub, "carol");
    assert.deepEqual(p.groups, ["eng"]);
  });

  it("persists the key with mode 0600 in a 0700 dir and reuses it", async () => {
    const dataDir = join(dir, "persist", "data");
    const first = await DevIssuer.open(dataDir);
    const second = await DevIssuer.open(dataDir);
    assert.equal(first.kid, second.kid);
    assert.deepEqual(first.publicJwk, second.publicJwk);
    assert.equal(first.publicJwk.d, undefined, "public JWK has no private part");
    const verifier = createTokenVerifier({ issuers: [], dev_issuer: true }, { devIssuer: second });
    assert.equal((await verifier.verify(await first.issue({ sub: "alice" }))).sub, "alice");
    if (process.platform !== "win32") {
      assert.equal((await stat(join(dataDir, "dev-issuer.json"))).mode & 0o777, 0o600);
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
    }
  });

  it("tightens a key file that other users could read", { skip: process.platform === "win32" }, async () => {
    const dataDir = join(dir, "loose");
    const first = await DevIssuer.open(dataDir);
    await chmod(join(dataDir, "dev-issuer.json"), 0o644);
    assert.equal((await DevIssuer.open(dataDir)).kid, first.kid);
    assert.equal((await stat(join(dataDir, "dev-issuer.json"))).mode & 0o777, 0o600);
  });

  it("ends up with one key when several processes create it at once", async () => {
    const dataDir = join(dir, "race");
    const issuers = await Promise.all(Array.from({ length: 8 }, () => DevIssuer.open(dataDir)));
    assert.equal(new Set(issuers.map((i) => i.kid)).size, 1);
    assert.deepEqual(await readdir(dataDir), ["dev-issuer.json"], "no temp files left behind");
  });

  it("ends up with one key when separate processes race to create it", async () => {
    const dataDir = join(dir, "race-processes");
    const module = new URL("../../src/identity/dev-issuer.ts", import.meta.url).href;
    const script = `const { DevIssuer } = await import(${JSON.stringify(module)}); process.stdout.write((await DevIssuer.open(process.argv[1])).kid);`;
    const run = () => new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dataDir], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const kids = await Promise.all([run(), run(), run(), run()]);
    assert.equal(new Set(kids).size, 1, `different keys: ${kids.join(", ")}`);
    assert.equal((await DevIssuer.open(dataDir)).kid, kids[0]);
  });

  it("refuses a corrupt key file", async () => {
    const dataDir = join(dir, "corrupt");
    await DevIssuer.open(dataDir);
    await writeFile(join(dataDir, "dev-issuer.json"), "{not json");
    await assert.rejects(DevIssuer.open(dataDir), (err) => isPortcullisError(err, "E_CONFIG_INVALID"));
  });

  it("dev tokens are refused unless identity.dev_issuer is on", async () => {
    const dev = await DevIssuer.open(join(dir, "rt"));
    const token = await dev.issue({ sub: "alice" });
    await rejects(createTokenVerifier({ issuers: [issuerConfig()], dev_issuer: false }, { devIssuer: dev }), token);
    assert.throws(() => createTokenVerifier({ issuers: [], dev_issuer: true }), TypeError);
  });

  it("a token from another dev issuer key is refused", async () => {
    const mine = await DevIssuer.open(join(dir, "mine"));
    const theirs = await DevIssuer.open(join(dir, "theirs"));
    const verifier = createTokenVerifier({ issuers: [], dev_issuer: true }, { devIssuer: mine });
    await rejects(verifier, await theirs.issue({ sub: "mallory" }));
  });
});

describe("parseGroups", () => {
  it("accepts arrays and space/comma separated strings, nothing else", () => {
    assert.deepEqual(parseGroups(["a", "b", "a"]), ["a", "b"]);
    assert.deepEqual(parseGroups(["a", 1, null, { x: 1 }, "b"]), ["a", "b"]);
    assert.deepEqual(parseGroups("a b,c ,, d"), ["a", "b", "c", "d"]);
    assert.deepEqual(parseGroups(42), []);
    assert.deepEqual(parseGroups({ a: true }), []);
    assert.deepEqual(parseGroups(undefined), []);
    assert.deepEqual(parseGroups(""), []);
  });
});

describe("createTokenVerifier with a configured issuer", () => {
  let jwksServer: JsonServer;
  let key: TestKey;
  let verifier: TokenVerifier;
  const claims = (extra: JWTPayload = {}): JWTPayload => ({
    iss: ISSUER,
    aud: "portcullis",
    sub: "agent-7",
    exp: nowSeconds() + 300,
    ...extra,
  });

  before(async () => {
    key = await generateTestKey("RS256");
    jwksServer = await startJsonServer();
    jwksServer.set("/jwks", { keys: [key.publicJwk] });
    verifier = createTokenVerifier({
      issuers: [issuerConfig({ jwks_uri: `${jwksServer.url}/jwks`, max_token_age: 3_600_000 })],
      dev_issuer: false,
    });
  });
  after(async () => {
    await jwksServer.close();
  });

  it("accepts a valid token and maps the principal", async () => {
    const token = await signToken(key, claims({ groups: ["eng"], jti: "j-1", graph_id: "g1", run_id: "r1" }));
    const p = await verifier.verify(token);
    assert.deepEqual(p, { sub: "agent-7", groups: ["eng"], iss: ISSUER, jti: "j-1", exp: p.exp, run: { graph_id: "g1", run_id: "r1" } });
  });

  it("reads the run context from a nested portcullis_run claim; top-level wins", async () => {
    const token = await signToken(key, claims({ node: "top", portcullis_run: { node: "nested", thread_id: "t", run_id: 7 } }));
    assert.deepEqual((await verifier.verify(token)).run, { node: "top", thread_id: "t" });
  });

  it("reads groups from the configured claim, also a string or a dotted path", async () => {
    const jwks_uri = `${jwksServer.url}/jwks`;
    const roles = createTokenVerifier({ issuers: [issuerConfig({ jwks_uri, groups_claim: "roles" })], dev_issuer: false });
    assert.deepEqual((await roles.verify(await signToken(key, claims({ roles: "db-read, db-write ops", groups: ["x"] })))).groups, ["db-read", "db-write", "ops"]);
    assert.deepEqual((await roles.verify(await signToken(key, claims({ roles: 7 })))).groups, []);
    const keycloak = createTokenVerifier({ issuers: [issuerConfig({ jwks_uri, groups_claim: "realm_access.roles" })], dev_issuer: false });
    assert.deepEqual((await keycloak.verify(await signToken(key, claims({ realm_access: { roles: ["kc"] } })))).groups, ["kc"]);
  });

  it("accepts any of several configured audiences", async () => {
    const v = createTokenVerifier({ issuers: [issuerConfig({ jwks_uri: `${jwksServer.url}/jwks`, audience: ["a", "portcullis"] })], dev_issuer: false });
    assert.equal((await v.verify(await signToken(key, claims()))).sub, "agent-7");
  });

  it("rejects an expired token with E_TOKEN_EXPIRED", async () => {
    await rejects(verifier, await signToken(key, claims({ exp: nowSeconds() - 60, iat: nowSeconds() - 120 })), "E_TOKEN_EXPIRED");
  });

  it("tolerates clock skew within clock_tolerance", async () => {
    const token = await signToken(key, claims({ exp: nowSeconds() - 2, nbf: nowSeconds() + 2 }));
    assert.equal((await verifier.verify(token)).sub, "agent-7");
  });

  it("rejects a token that is not valid yet (nbf beyond the tolerance)", async () => {
    const msg = await rejects(verifier, await signToken(key, claims({ nbf: nowSeconds() + 60 })));
    assert.match(msg, /not valid yet/);
  });

  it("rejects a wrong audience", async () => {
    await rejects(verifier, await signToken(key, claims({ aud: "someone-else" })));
    await rejects(verifier, await signToken(key, claims({ aud: undefined })));
  });

  it("rejects an issuer that is not configured, or no issuer", async () => {
    const msg = await rejects(verifier, await signToken(key, claims({ iss: "https://evil.example.test" })));
    assert.match(msg, /not configured/);
    await rejects(verifier, await signToken(key, claims({ iss: `${ISSUER}/` })));
    await rejects(verifier, await signToken(key, claims({ iss: undefined })));
  });

  it("rejects HS256 signed with the public key as the secret (key confusion)", async () => {
    const pem = new TextEncoder().encode(await exportSPKI(key.publicKey));
    const jwkBytes = new TextEncoder().encode(JSON.stringify(key.publicJwk));
    for (const secret of [pem, jwkBytes]) {
      const token = await signToken({ privateKey: secret, kid: key.kid, alg: "HS256" }, claims());
      const msg = await rejects(verifier, token);
      assert.match(msg, /"HS256" is not allowed/);
    }
  });

  it("rejects an algorithm that is not pinned (RS384 with only RS256 pinned)", async () => {
    // The real key, so only the algorithm pin stands in the way.
    const rs384 = { privateKey: await importJWK({ ...key.privateJwk, alg: "RS384" }, "RS384"), kid: key.kid, alg: "RS384" };
    const token = await signToken(rs384, claims());
    const msg = await rejects(verifier, token);
    assert.match(msg, /"RS384" is not allowed/);
  });

  it('rejects alg "none" in every spelling', async () => {
    const payload = base64url.encode(JSON.stringify(claims()));
    for (const alg of ["none", "None", "NONE", "nOnE"]) {
      const header = base64url.encode(JSON.stringify({ alg, typ: "JWT" }));
      await rejects(verifier, `${header}.${payload}.`);
      await rejects(verifier, `${header}.${payload}`);
    }
  });

  it("rejects a signature by a key that is not in the JWKS", async () => {
    const other = await generateTestKey("RS256", key.kid);
    const msg = await rejects(verifier, await signToken(other, claims()));
    assert.match(msg, /signature/);
    const unknownKid = await generateTestKey("RS256");
    await rejects(verifier, await signToken(unknownKid, claims()));
    await rejects(verifier, await signToken(other, claims(), { kid: null }));
  });

  it("rejects a tampered payload", async () => {
    const token = await signToken(key, claims({ groups: ["eng"] }));
    const [h, , s] = token.split(".");
    const forged = base64url.encode(JSON.stringify(claims({ groups: ["admins"] })));
    await rejects(verifier, `${h}.${forged}.${s}`);
  });

  it("rejects a token older than max_token_age", async () => {
    const old = await signToken(key, claims({ iat: nowSeconds() - 2 * 3600 }));
    const msg = await rejects(verifier, old, "E_TOKEN_EXPIRED");
    assert.match(msg, /max_token_age/);
    // max_token_age needs iat to mean anything.
    await rejects(verifier, await signToken(key, claims(), { iat: false }));
  });

  it("rejects a token without exp or sub, or with a non-string sub", async () => {
    const msg = await rejects(verifier, await signToken(key, claims({ exp: undefined })));
    assert.match(msg, /"exp"/);
    await rejects(verifier, await signToken(key, claims({ sub: undefined })));
    await rejects(verifier, await signToken(key, { ...claims(), sub: 42 } as unknown as JWTPayload));
    await rejects(verifier, await signToken(key, claims({ sub: "" })));
  });

  it("rejects garbage", async () => {
    const valid = await signToken(key, claims());
    for (const junk of [
      "",
      "garbage",
      "a.b.c",
      "....",
      "Bearer " + valid,
      valid + "x",
      " " + valid,
      valid.split(".").slice(0, 2).join("."),
      base64url.encode("{}") + "." + base64url.encode("{}") + ".",
      "x".repeat(100_000),
      JSON.stringify(claims()),
    ]) {
      await rejects(verifier, junk);
    }
    await rejects(verifier, undefined as unknown as string);
  });

  it("fails closed, without leaking the token, when the JWKS cannot be fetched", async () => {
    const down = createTokenVerifier({ issuers: [issuerConfig({ jwks_uri: `${jwksServer.url}/missing` })], dev_issuer: false });
    const msg = await rejects(down, await signToken(key, claims()));
    assert.match(msg, /keys of issuer/);
  });

  it("refuses the same issuer configured twice", () => {
    assert.throws(
      () => createTokenVerifier({ issuers: [issuerConfig(), issuerConfig()], dev_issuer: false }),
      (err) => isPortcullisError(err, "E_CONFIG_INVALID"),
    );
  });
});

describe("OIDC discovery", () => {
  let server: JsonServer;
  let key: TestKey;
  const WELL_KNOWN = "/.well-known/openid-configuration";

  before(async () => {
    key = await generateTestKey("ES256");
    server = await startJsonServer();
    server.set("/keys", { keys: [key.publicJwk] });
  });
  after(async () => {
    await server.close();
  });

  const token = () => signToken(key, { iss: server.url, aud: "portcullis", sub: "s", exp: nowSeconds() + 60 });

  it("is lazy, retried after a failure and cached after success", async () => {
    server.set(WELL_KNOWN, { error: "down" }, 503);
    const verifier = createTokenVerifier({ issuers: [issuerConfig({ issuer: server.url, algorithms: ["ES256"] })], dev_issuer: false }, { failureRetryMs: 0 });
    assert.equal(server.hits(WELL_KNOWN), 0, "nothing fetched before the first token");
    const msg = await rejects(verifier, await token());
    assert.match(msg, /discovery/);
    server.set(WELL_KNOWN, { issuer: server.url, jwks_uri: `${server.url}/keys` });
    await Promise.all([verifier.verify(await token()), verifier.verify(await token())]);
    assert.equal((await verifier.verify(await token())).sub, "s");
    assert.equal(server.hits(WELL_KNOWN), 2, "one failed fetch, one successful, then cached");
  });

  it("refuses a discovery document that names another issuer", async () => {
    server.set(WELL_KNOWN, { issuer: "https://elsewhere.example.test", jwks_uri: `${server.url}/keys` });
    const verifier = createTokenVerifier({ issuers: [issuerConfig({ issuer: server.url, algorithms: ["ES256"] })], dev_issuer: false });
    const msg = await rejects(verifier, await token());
    assert.match(msg, /names issuer/);
  });

  it("times out a provider that does not answer", async () => {
    const { createServer } = await import("node:http");
    const silent = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const verifier = createTokenVerifier({ issuers: [issuerConfig({ issuer: url, algorithms: ["ES256"] })], dev_issuer: false }, { fetchTimeoutMs: 200 });
      const t = await signToken(key, { iss: url, aud: "portcullis", sub: "s", exp: nowSeconds() + 60 });
      const msg = await rejects(verifier, t);
      assert.match(msg, /no answer within 200ms/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe("verified-token cache", () => {
  it("answers a repeated token from the cache, but never past its expiry", async () => {
    const { mock } = await import("node:test");
    const { createTokenVerifier } = await import("../../src/identity/verifier.js");
    const { DevIssuer } = await import("../../src/identity/dev-issuer.js");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "pc-cache-"));
    try {
      const dev = await DevIssuer.open(dir);
      const verifier = createTokenVerifier({ issuers: [], dev_issuer: true }, { devIssuer: dev });
      const token = await dev.issue({ sub: "cached", ttlSeconds: 2 });
      const first = await verifier.verify(token);
      first.groups.push("tampered");
      const second = await verifier.verify(token);
      assert.deepEqual(second.groups, [], "callers get their own copy");
      mock.timers.enable({ apis: ["Date"], now: Date.now() + 120_000 });
      try {
        await assert.rejects(verifier.verify(token), (e: { code?: string }) => e.code === "E_TOKEN_EXPIRED" || e.code === "E_TOKEN_INVALID");
      } finally {
        mock.timers.reset();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
