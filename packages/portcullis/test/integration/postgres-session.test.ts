/**
 * The PostgreSQL session as a whole: login with a token, the vaulted credential never leaving the
 * gateway, refusals, the session record, kill, and token expiry.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { type AddressInfo, createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SignJWT } from "jose";
import pg from "pg";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { startTap } from "../support/tap.js";

async function connectError(config: pg.ClientConfig): Promise<{ code?: string; message: string }> {
  const client = new pg.Client(config);
  try {
    await client.connect();
  } catch (err) {
    return err as { code?: string; message: string };
  } finally {
    await client.end().catch(() => {});
  }
  assert.fail("connection unexpectedly succeeded");
}

describe("postgres session through the gateway", () => {
  let target: TestTarget;
  let gw: TestGateway;
  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target });
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
  });

  it("logs in with a dev token and runs queries as the vaulted user", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token()));
    await client.connect();
    const r = await client.query("select current_user as u, current_database() as d, $1::int + 1 as n", [41]);
    assert.deepEqual(r.rows[0], { u: UPSTREAM_USER, d: "app", n: 42 });
    await client.end();
  });

  it("never shows the upstream password to the agent, on the wire or in the logs", async () => {
    const tap = await startTap(gw.host, gw.port);
    const token = await gw.token();
    const client = new pg.Client({ ...gw.clientConfig(token), port: tap.port });
    await client.connect();
    await client.query("select 1");
    await client.query("select * from pg_settings where name = 'password_encryption'");
    await client.query("select nonexistent_column").catch(() => {});
    await client.end();
    await tap.close();
    const seen = tap.toClient().toString("latin1");
    assert.ok(seen.length > 100, "the tap recorded the session");
    assert.ok(!seen.includes(UPSTREAM_PASSWORD), "upstream password reached the client");
    const logs = gw.logs.join("\n");
    assert.ok(logs.includes("postgres session opened"));
    assert.ok(!logs.includes(UPSTREAM_PASSWORD), "upstream password in logs");
    assert.ok(!logs.includes(token), "token in logs");
  });

  it("refuses tokens it cannot verify with 28P01 and no detail", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const forged = await new SignJWT({ groups: ["agents"] })
      .setProtectedHeader({ alg: "EdDSA", kid: gw.issuer.kid })
      .setIssuer(gw.issuer.iss).setAudience("portcullis").setSubject("mallory")
      .setIssuedAt().setExpirationTime("5m")
      .sign(privateKey);
    for (const password of [forged, "not-a-token", `${(await gw.token()).slice(0, -4)}AAAA`]) {
      const err = await connectError(gw.clientConfig(password));
      assert.equal(err.code, "28P01");
      assert.equal(err.message, "portcullis: invalid token");
    }
  });

  it("answers an unknown connection and a forbidden one alike", async () => {
    const unknown = await connectError(gw.clientConfig(await gw.token(), "nope"));
    const forbidden = await connectError(gw.clientConfig(await gw.token("agent-2", ["interns"]), "app"));
    assert.equal(unknown.code, "28000");
    assert.equal(forbidden.code, "28000");
    assert.equal(unknown.message.replace('"nope"', '"X"'), forbidden.message.replace('"app"', '"X"'));
  });

  it("records the session with principal, client address, run hints and how it ended", async () => {
    const client = new pg.Client({ ...gw.clientConfig(await gw.token("agent-7")), options: "-c portcullis.run_id=run-42 -c portcullis.node=fetch_customers -c statement_timeout=5000" });
    await client.connect();
    const r = await client.query("show statement_timeout");
    assert.equal(r.rows[0].statement_timeout, "5s", "ordinary options still reach the target");
    const live = gw.gw.context.sessions.list().find((s) => s.principal.sub === "agent-7");
    assert.ok(live, "session is in the live registry");
    await client.end();
    await sleep(100);
    const rec = gw.gw.store.getSession(live.id);
    assert.ok(rec);
    assert.equal(rec.connection, "app");
    assert.equal(rec.protocol, "postgres");
    assert.deepEqual(rec.groups, ["agents"]);
    assert.deepEqual(rec.runHints, { run_id: "run-42", node: "fetch_customers" });
    assert.match(rec.clientAddress, /^127\.0\.0\.1:\d+$/);
    assert.equal(rec.endReason, "client_closed");
    assert.ok(rec.endedAt && rec.endedAt >= rec.startedAt);
    assert.equal(gw.gw.context.sessions.get(live.id), undefined, "gone from the live registry");
  });

  it("kills a live session from the registry with a clear error to the client", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token("agent-kill")));
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    await client.connect();
    const session = gw.gw.context.sessions.list().find((s) => s.principal.sub === "agent-kill")!;
    const running = client.query("select pg_sleep(5)").then(() => undefined, (e: Error & { code?: string }) => e);
    await sleep(100);
    const t0 = Date.now();
    assert.equal(gw.gw.context.sessions.kill(session.id, "operator request"), true);
    const err = await running;
    assert.ok(Date.now() - t0 < 1000, "killed within a second");
    assert.ok(err, "the running query fails");
    const all = [err, ...errors] as Array<Error & { code?: string }>;
    assert.ok(all.some((e) => e.code === "57P01" && /operator request/.test(e.message)), all.map((e) => `${e.code} ${e.message}`).join("; "));
    await sleep(50);
    assert.equal(gw.gw.store.getSession(session.id)?.endReason, "killed: operator request");
    await client.end().catch(() => {});
  });

  it("ends a session when its token expires", async () => {
    const client = new pg.Client(gw.clientConfig(await gw.token("agent-short", ["agents"], 2)));
    const errors: Array<Error & { code?: string }> = [];
    client.on("error", (e) => errors.push(e));
    await client.connect();
    await client.query("select 1");
    await sleep(2600);
    const late = await client.query("select 1").then(() => undefined, (e: Error & { code?: string }) => e);
    assert.ok(late, "the session no longer answers");
    assert.ok(errors.some((e) => e.code === "PX003") || late?.code === "PX003", errors.map((e) => `${e.code} ${e.message}`).join("; "));
    await client.end().catch(() => {});
  });
});

/** A fake target that answers every startup with the given messages and records what it received. */
async function startFakeTarget(answer: Buffer[]): Promise<{ port: number; received: () => Buffer; close: () => Promise<void> }> {
  const got: Buffer[] = [];
  const server = createServer((sock) => {
    let sentAnswer = false;
    sock.on("data", (b) => {
      got.push(b);
      if (!sentAnswer) { sentAnswer = true; sock.write(Buffer.concat(answer)); }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as AddressInfo).port, received: () => Buffer.concat(got), close: () => new Promise((r) => server.close(() => r())) };
}

const authMessage = (code: number, data: Buffer = Buffer.alloc(0)) => {
  const b = Buffer.alloc(9 + data.length);
  b.write("R", 0);
  b.writeInt32BE(8 + data.length, 1);
  b.writeInt32BE(code, 5);
  data.copy(b, 9);
  return b;
};

describe("a rogue target cannot get the vaulted password", () => {
  const viaFake = async (answer: Buffer[]) => {
    const fake = await startFakeTarget(answer);
    const target = await startTarget();
    const gw = await startTestGateway({
      target,
      connections: [{ name: "app", type: "postgres", target: { host: "127.0.0.1", port: fake.port, database: "app", tls: "disable" }, credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, access: ["agents"] }],
    });
    try {
      const err = await connectError(gw.clientConfig(await gw.token()));
      return { err, received: fake.received().toString("latin1") };
    } finally {
      await gw.stop();
      await target.stop();
      await fake.close();
    }
  };

  it("refuses a cleartext password request over an unencrypted link", async () => {
    const { err, received } = await viaFake([authMessage(3)]);
    assert.equal(err.code, "08004");
    assert.ok(!received.includes(UPSTREAM_PASSWORD), "the password was sent in the clear");
  });

  it("refuses AuthenticationOk from a target that skipped SCRAM's proof", async () => {
    const { err } = await viaFake([authMessage(10, Buffer.from("SCRAM-SHA-256\0\0")), authMessage(0)]);
    assert.equal(err.code, "08004");
  });
});

describe("upstream login and TLS modes", () => {
  it("logs in to md5 and trust targets", async () => {
    for (const authMethod of ["md5", "trust"] as const) {
      const target = await startTarget({ authMethod });
      const gw = await startTestGateway({ target });
      try {
        const client = new pg.Client(gw.clientConfig(await gw.token()));
        await client.connect();
        assert.equal((await client.query("select current_user as u")).rows[0].u, UPSTREAM_USER);
        await client.end();
      } finally {
        await gw.stop();
        await target.stop();
      }
    }
  });

  it("speaks TLS to the target in require and verify-full, and refuses plaintext when TLS is required", async () => {
    const tlsTarget = await startTarget({ ssl: true });
    const plainTarget = await startTarget();
    try {
      for (const mode of ["require", "verify-full"] as const) {
        const gw = await startTestGateway({ target: tlsTarget, tls: mode });
        try {
          const client = new pg.Client(gw.clientConfig(await gw.token()));
          await client.connect();
          const r = await client.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
          assert.equal(r.rows[0].ssl, true, `${mode}: the gateway's upstream connection is encrypted`);
          await client.end();
        } finally {
          await gw.stop();
        }
      }
      const gw = await startTestGateway({ target: plainTarget, tls: "require" });
      try {
        const err = await connectError(gw.clientConfig(await gw.token()));
        assert.equal(err.code, "08001");
        assert.match(err.message, /cannot reach the target of connection "app"/);
      } finally {
        await gw.stop();
      }
    } finally {
      await tlsTarget.stop();
      await plainTarget.stop();
    }
  });

  it("requires TLS from the agent unless the listener is loopback with the dev issuer on", async () => {
    const target = await startTarget();
    const gw = await startTestGateway({
      target,
      overrides: { identity: { dev_issuer: false, issuers: [{ issuer: "http://127.0.0.1:9/", audience: "portcullis", jwks_uri: "http://127.0.0.1:9/jwks" }] } },
    });
    try {
      const plain = await connectError({ ...gw.clientConfig("whatever"), ssl: false });
      assert.equal(plain.code, "28000");
      assert.match(plain.message, /TLS is required/);
      const encrypted = await connectError({ ...gw.clientConfig("whatever"), ssl: { rejectUnauthorized: false } });
      assert.equal(encrypted.code, "28P01", "over TLS the token is read and judged");
    } finally {
      await gw.stop();
      await target.stop();
    }
  });
});
