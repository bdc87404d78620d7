/**
 * SCRAM-SHA-256 client against RFC 7677's test vector and against a server written here, and the
 * MD5 password answer. The server side is computed independently of src/ (RFC 5802 §3).
 */
import assert from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { describe, it } from "node:test";
import { isPortcullisError } from "../../src/errors.js";
import { ScramClient, md5Password } from "../../src/protocols/postgres/scram.js";

// RFC 7677 §3.
const RFC = {
  user: "user",
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  iterations: 4096,
};

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]!));
const attrs = (text: string) => new Map(text.split(",").map((p) => [p[0]!, p.slice(2)] as [string, string]));

/** What a PostgreSQL role's SCRAM verifier holds. */
function verifier(password: string, saltB64: string, iterations: number) {
  const salted = pbkdf2Sync(password, Buffer.from(saltB64, "base64"), iterations, 32, "sha256");
  return { salt: saltB64, iterations, storedKey: sha256(hmac(salted, "Client Key")), serverKey: hmac(salted, "Server Key") };
}

/** A SCRAM-SHA-256 server for one exchange, written from RFC 5802 without reference to src/. */
class TestScramServer {
  private clientFirstBare = "";
  private serverFirst = "";
  private nonce = "";
  constructor(private readonly v: ReturnType<typeof verifier>, private readonly serverNonce = randomBytes(18).toString("base64")) {}

  first(clientFirst: string): string {
    assert.ok(clientFirst.startsWith("n,,"), "no channel binding requested");
    this.clientFirstBare = clientFirst.slice(3);
    const a = attrs(this.clientFirstBare);
    assert.ok(a.has("n"), "client-first has n=");
    const clientNonce = a.get("r");
    assert.ok(clientNonce && clientNonce.length >= 16, "client nonce is present and not trivially short");
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.v.salt},i=${this.v.iterations}`;
    return this.serverFirst;
  }

  /** Checks the client's proof; returns server-final-message, or undefined when the proof is wrong. */
  final(clientFinal: string): string | undefined {
    const pAt = clientFinal.lastIndexOf(",p=");
    const withoutProof = clientFinal.slice(0, pAt);
    const a = attrs(withoutProof);
    assert.equal(a.get("c"), "biws", "channel binding data is base64('n,,')");
    assert.equal(a.get("r"), this.nonce, "client-final echoes the combined nonce");
    const proof = Buffer.from(clientFinal.slice(pAt + 3), "base64");
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.v.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    if (proof.length !== 32 || !timingSafeEqual(sha256(clientKey), this.v.storedKey)) return undefined;
    return `v=${hmac(this.v.serverKey, authMessage).toString("base64")}`;
  }
}

/** The client with its nonce (and so its client-first-message) fixed, as RFC 7677 fixes it. */
function fixedClient(password: string, nonce: string, user = ""): ScramClient {
  const client = new ScramClient(password);
  // Both fields are TypeScript-private and -readonly only; the class offers no way to inject a nonce.
  Object.assign(client, { clientNonce: nonce, clientFirstBare: `n=${user},r=${nonce}` });
  return client;
}

function assertUpstreamAuth(err: unknown, re: RegExp): true {
  assert.ok(isPortcullisError(err, "E_UPSTREAM_AUTH"), `expected E_UPSTREAM_AUTH, got ${String(err)}`);
  assert.match(err.message, re);
  return true;
}

describe("ScramClient", () => {
  it("reproduces RFC 7677's client-final-message and accepts its server signature", async () => {
    const client = fixedClient(RFC.password, RFC.clientNonce, RFC.user);
    assert.equal(client.initialResponse().toString(), RFC.clientFirst);
    const final = await client.respond(Buffer.from(RFC.serverFirst));
    assert.equal(final.toString(), RFC.clientFinal);
    assert.doesNotThrow(() => client.verifyFinal(Buffer.from(RFC.serverFinal)));
  });

  it("sends a client-first-message with no channel binding, an empty user and a fresh nonce", () => {
    const a = new ScramClient("pw").initialResponse().toString();
    const b = new ScramClient("pw").initialResponse().toString();
    assert.match(a, /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    assert.notEqual(a, b);
    assert.equal(new ScramClient("pw").mechanism, "SCRAM-SHA-256");
  });

  it("completes an exchange with a server computed from RFC 7677's verifier", async () => {
    const server = new TestScramServer(verifier(RFC.password, RFC.salt, RFC.iterations));
    const client = new ScramClient(RFC.password);
    const serverFirst = server.first(client.initialResponse().toString());
    const clientFinal = (await client.respond(Buffer.from(serverFirst))).toString();
    const serverFinal = server.final(clientFinal);
    assert.ok(serverFinal, "the server accepts the client's proof");
    assert.doesNotThrow(() => client.verifyFinal(Buffer.from(serverFinal)));
  });

  it("computes the proof a server expects for a fixed nonce (computed by hand here)", async () => {
    const nonce = RFC.clientNonce;
    const serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const client = fixedClient(RFC.password, nonce);
    const serverFirst = `r=${nonce}${serverNonce},s=${RFC.salt},i=${RFC.iterations}`;
    const final = (await client.respond(Buffer.from(serverFirst))).toString();

    const salted = pbkdf2Sync(RFC.password, Buffer.from(RFC.salt, "base64"), RFC.iterations, 32, "sha256");
    const clientKey = hmac(salted, "Client Key");
    const withoutProof = `c=biws,r=${nonce}${serverNonce}`;
    const authMessage = `n=,r=${nonce},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage)).toString("base64");
    assert.equal(final, `${withoutProof},p=${proof}`);
    client.verifyFinal(Buffer.from(`v=${hmac(hmac(salted, "Server Key"), authMessage).toString("base64")}`));
  });

  it("a wrong password is refused by the server (the salted-password cache does not mix passwords up)", async () => {
    const v = verifier(RFC.password, RFC.salt, RFC.iterations);
    for (const [password, accepted] of [[RFC.password, true], ["pencil2", false], [RFC.password, true], ["", false]] as const) {
      const server = new TestScramServer(v);
      const client = new ScramClient(password);
      const serverFirst = server.first(client.initialResponse().toString());
      const final = server.final((await client.respond(Buffer.from(serverFirst))).toString());
      assert.equal(final !== undefined, accepted, `password ${JSON.stringify(password)}`);
    }
  });

  it("throws when the server's signature does not match", async () => {
    const v = verifier(RFC.password, RFC.salt, RFC.iterations);
    const server = new TestScramServer(v);
    const client = new ScramClient(RFC.password);
    await client.respond(Buffer.from(server.first(client.initialResponse().toString())));
    // An impostor that does not know the password: a signature from another key, a truncated one, garbage.
    const wrong = `v=${hmac(Buffer.from("not the server key"), "x").toString("base64")}`;
    assert.throws(() => client.verifyFinal(Buffer.from(wrong)), (e) => assertUpstreamAuth(e, /server signature mismatch/));
    assert.throws(() => client.verifyFinal(Buffer.from("v=AAAA")), (e) => assertUpstreamAuth(e, /server signature mismatch/));
    assert.throws(() => client.verifyFinal(Buffer.from("v=")), (e) => assertUpstreamAuth(e, /malformed|mismatch/));
  });

  it("throws on a server error or a server-final-message without a signature", async () => {
    const client = new ScramClient(RFC.password);
    const server = new TestScramServer(verifier(RFC.password, RFC.salt, RFC.iterations));
    await client.respond(Buffer.from(server.first(client.initialResponse().toString())));
    assert.throws(() => client.verifyFinal(Buffer.from("e=invalid-proof")), (e) => assertUpstreamAuth(e, /server error invalid-proof/));
    assert.throws(() => client.verifyFinal(Buffer.from("x=1")), (e) => assertUpstreamAuth(e, /malformed server-final-message/));
  });

  it("throws on a server-final-message before any server-first-message", () => {
    assert.throws(() => new ScramClient("pw").verifyFinal(Buffer.from(RFC.serverFinal)), (e) => assertUpstreamAuth(e, /malformed/));
  });

  it("throws when the server nonce does not extend the client nonce", async () => {
    const client = fixedClient(RFC.password, RFC.clientNonce);
    for (const r of ["somethingElse123", `${RFC.clientNonce}`, `x${RFC.clientNonce}abc`, RFC.clientNonce.slice(0, 10)]) {
      await assert.rejects(
        client.respond(Buffer.from(`r=${r},s=${RFC.salt},i=4096`)),
        (e) => assertUpstreamAuth(e, /server nonce does not extend the client nonce/),
      );
    }
  });

  it("throws on an absurd iteration count, without spending the PBKDF2 time", async () => {
    const client = fixedClient(RFC.password, RFC.clientNonce);
    for (const i of ["0", "-1", "1000001", String(2 ** 31), "99999999999"]) {
      const start = Date.now();
      await assert.rejects(
        client.respond(Buffer.from(`r=${RFC.clientNonce}srv,s=${RFC.salt},i=${i}`)),
        (e) => assertUpstreamAuth(e, /unreasonable iteration count/),
      );
      assert.ok(Date.now() - start < 500, `i=${i} took ${Date.now() - start} ms`);
    }
    for (const i of ["abc", "1.5", "NaN"]) {
      await assert.rejects(client.respond(Buffer.from(`r=${RFC.clientNonce}srv,s=${RFC.salt},i=${i}`)), (e) => assertUpstreamAuth(e, /malformed/));
    }
  });

  it("throws on a malformed server-first-message", async () => {
    const client = fixedClient(RFC.password, RFC.clientNonce);
    for (const text of ["", "garbage", `r=${RFC.clientNonce}x,i=4096`, `s=${RFC.salt},i=4096`, `r=${RFC.clientNonce}x,s=${RFC.salt}`]) {
      await assert.rejects(client.respond(Buffer.from(text)), (e) => assertUpstreamAuth(e, /malformed server-first-message/));
    }
  });

  it("never puts the password in an error message", async () => {
    const secret = "Sup3r-S3cret-pw";
    const client = new ScramClient(secret);
    const errors: Error[] = [];
    for (const text of ["garbage", "r=x,s=eA==,i=1", `r=${secret},s=${secret},i=${secret}`]) {
      await client.respond(Buffer.from(text)).catch((e: Error) => errors.push(e));
    }
    try { client.verifyFinal(Buffer.from(`v=${secret}`)); } catch (e) { errors.push(e as Error); }
    assert.equal(errors.length, 4);
    for (const e of errors) assert.ok(!e.message.includes("Sup3r"), e.message);
  });
});

describe("md5Password", () => {
  it("is md5 + md5(md5(password + user) + salt), matching known values", () => {
    // md5("postgres" + "postgres") is the well-known pg_authid value md53175bce1d3201d16594cebf9d7eb3f9d.
    assert.equal(md5Password("postgres", "postgres", Buffer.from([0x93, 0x1a, 0x00, 0xff])), "md511a87af51c9e2def4a8635060f90f7a6");
    assert.equal(md5Password("user", "pencil", Buffer.from([1, 2, 3, 4])), "md54376eb6913b38f9aaff38dc7cf19ca76");
  });

  it("agrees with the definition computed step by step", () => {
    const salt = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const inner = createHash("md5").update("s3cret" + "app_user").digest("hex");
    const expected = "md5" + createHash("md5").update(inner).update(salt).digest("hex");
    assert.equal(md5Password("app_user", "s3cret", salt), expected);
    assert.match(expected, /^md5[0-9a-f]{32}$/);
  });

  it("depends on the user, the password and the salt", () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const base = md5Password("u", "p", salt);
    assert.notEqual(md5Password("v", "p", salt), base);
    assert.notEqual(md5Password("u", "q", salt), base);
    assert.notEqual(md5Password("u", "p", Buffer.from([1, 2, 3, 5])), base);
  });
});
