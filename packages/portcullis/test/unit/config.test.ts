import assert from "node:assert/strict";
import type { PostgresConnection } from "../../src/config/schema.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig, parseConfig } from "../../src/config/load.js";
import { parseAddress, parseDuration, parseSize } from "../../src/config/units.js";

const minimal = {
  gateway: { postgres: "127.0.0.1:15432" },
  identity: { dev_issuer: true },
  connections: [{
    name: "customers", type: "postgres",
    target: { host: "127.0.0.1", port: 5432, database: "app" },
    credentials: { username: "reader", password: "${env:DB_PW}" },
    access: ["agents"],
  }],
};

function problems(raw: unknown, env: NodeJS.ProcessEnv = { DB_PW: "x" }): string[] {
  try {
    parseConfig(raw, "/etc/portcullis/portcullis.yaml", env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, "E_CONFIG_INVALID");
    return err.problems;
  }
  assert.fail("config unexpectedly valid");
}

describe("config", () => {
  it("accepts a minimal config and fills defaults", () => {
    const cfg = parseConfig(minimal, "/etc/portcullis/portcullis.yaml", { DB_PW: "pw" });
    const c = cfg.connections[0] as PostgresConnection;
    assert.equal(c.credentials.password, "pw");
    assert.equal(c.target.tls, "prefer");
    assert.equal(cfg.dataDir, "/etc/portcullis/.portcullis");
    assert.equal(cfg.storeUrl, "sqlite:/etc/portcullis/.portcullis/portcullis.db");
    assert.deepEqual(cfg.gateway.postgres, { host: "127.0.0.1", port: 15432 });
  });

  it("lists every problem at once with its path", () => {
    const got = problems({
      gateway: { postgres: "nowhere", colour: "blue" },
      identity: { dev_issuer: true },
      connections: [
        { ...minimal.connections[0], target: { host: "h", port: "not-a-port", database: "d", tls: "maybe" } },
        { ...minimal.connections[0], acess: ["agents"] },
      ],
    });
    assert.deepEqual(got.sort(), [
      'connections[0].target.port: expected a number',
      'connections[0].target.tls: expected one of: disable, prefer, require, verify-full',
      'connections[1]: unknown key "acess"',
      'gateway.postgres: expected "host:port"',
      'gateway: unknown key "colour"',
    ].sort());
  });

  it("refuses duplicate connection names", () => {
    const got = problems({ ...minimal, connections: [minimal.connections[0], minimal.connections[0]] });
    assert.deepEqual(got, ['connections[1].name: duplicate connection name "customers" (first at connections[0])']);
  });

  it("refuses sections it does not know instead of ignoring them", () => {
    const got = problems({ ...minimal, quotas: [{ groups: ["agents"], rows_per_hour: 10 }] });
    assert.deepEqual(got, ['(root): unknown key "quotas"']);
  });

  it("checks budgets and alert channels", () => {
    const got = problems({
      ...minimal,
      budgets: [{ groups: ["agents"] }, { per: "group", rows_per_hour: 5 }],
      alerts: [{ on: ["deny"] }, { on: ["nonsense"], webhook: { url: "http://127.0.0.1:1/h" } }],
    });
    assert.deepEqual(got.sort(), [
      "alerts[0]: expected exactly one of: webhook, slack, email",
      "alerts[1].on[0]: expected one of: deny, approval_requested, approval_decided, budget_exceeded, revoked_identity_used, session_killed, audit_unavailable, bulk_read, new_client_address",
      "budgets[0]: expected at least one of rows_per_hour, bytes_per_hour, statements_per_hour, tables_per_hour",
      "budgets[1]: per: group needs groups",
    ].sort());
    // Cross-field checks, once every field is valid on its own.
    assert.deepEqual(problems({ ...minimal, budgets: [{ name: "x", rows_per_hour: 1 }, { name: "x", bytes_per_hour: "1MB", connections: ["nope"] }] }).sort(), [
      'budgets[1].connections[0]: no connection named "nope"',
      'budgets[1].name: duplicate budget name "x" (first at budgets[0])',
    ]);
  });

  it("reports unresolvable references at their path, without inventing a value", () => {
    const got = problems(minimal, {});
    assert.deepEqual(got, ["connections[0].credentials.password: environment variable DB_PW is not set"]);
    const withFile = { ...minimal, connections: [{ ...minimal.connections[0], credentials: { username: "r", password: "${file:./missing.txt}" } }] };
    assert.match(problems(withFile)[0]!, /^connections\[0\]\.credentials\.password: cannot read file \.\/missing\.txt \(ENOENT\)$/);
  });

  it("resolves ${file:} relative to the config file and trims one trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-config-"));
    writeFileSync(join(dir, "pw.txt"), "from-file\n");
    writeFileSync(join(dir, "portcullis.yaml"), [
      "gateway: { postgres: 127.0.0.1:15432 }",
      "identity: { dev_issuer: true }",
      "connections:",
      "  - name: c1",
      "    type: postgres",
      "    target: { host: 127.0.0.1, port: \"${env:PORT}\", database: app }",
      "    credentials: { username: u, password: \"${file:pw.txt}\" }",
      "    access: [agents]",
    ].join("\n"));
    const cfg = loadConfig(join(dir, "portcullis.yaml"), { PORT: "6543" });
    assert.equal((cfg.connections[0] as PostgresConnection).credentials.password, "from-file");
    assert.equal((cfg.connections[0] as PostgresConnection).target.port, 6543, "a numeric string from ${env:} is a port");
  });

  it("needs an issuer and refuses connection types this version lacks", () => {
    assert.deepEqual(problems({ gateway: {}, connections: [] }), ["identity: no token issuer: configure identity.issuers or set identity.dev_issuer: true"]);
    const got = problems({ ...minimal, connections: [{ name: "b", type: "ssh", target: { host: "x" } }] });
    assert.match(got[0]!, /^connections\[0\]\.type: expected one of: postgres, http/);
    // An HTTP connection is served on gateway.http: without it, it could never be reached.
    assert.deepEqual(problems({ ...minimal, connections: [{ name: "b", type: "http", target: { url: "http://x" }, access: ["agents"] }] }), [
      "connections[0].type: http connections are served on gateway.http, which is not set",
    ]);
  });

  it("reports YAML syntax errors with a line", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-config-"));
    writeFileSync(join(dir, "bad.yaml"), "gateway:\n  postgres: [unclosed\n");
    assert.throws(() => loadConfig(join(dir, "bad.yaml")), (err: ConfigError) => /\(yaml\) line \d+/.test(err.problems[0]!));
  });

  it("parses units", () => {
    assert.equal(parseDuration("15m"), 900_000);
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("15 minutes"), undefined);
    assert.equal(parseSize("50MB"), 50 * 1024 * 1024);
    assert.equal(parseSize("1.5kb"), 1536);
    assert.deepEqual(parseAddress("[::1]:5432"), { host: "::1", port: 5432 });
    assert.equal(parseAddress("127.0.0.1:70000"), undefined);
  });
});
