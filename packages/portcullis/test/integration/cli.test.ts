/** The `portcullis` binary as a user runs it: help, config validate, token issue, policy check, serve + SIGHUP. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { decodeJwt } from "jose";
import { BIN, cli } from "../support/cli.js";

function writeConfig(dir: string, body: string): string {
  const file = join(dir, "portcullis.yaml");
  writeFileSync(file, body);
  return file;
}

const GOOD = (httpPort = 0) => `gateway:
  http: 127.0.0.1:${httpPort}
  data_dir: ./data
identity:
  dev_issuer: true
connections:
  - name: customers
    type: postgres
    target: { host: 127.0.0.1, port: 5432, database: app }
    credentials: { username: reader, password: "\${env:DB_PASSWORD}" }
    access: [agents]
`;

describe("portcullis CLI", () => {
  it("prints help for every command", async () => {
    for (const args of [["--help"], ["serve", "--help"], ["config", "validate", "--help"], ["token", "issue", "--help"], ["quickstart", "--help"]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.stdout, /Usage: portcullis/);
    }
  });

  it("validates a config: ok, and every problem on its own line with exit 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-cli-"));
    const file = writeConfig(dir, GOOD());
    const ok = await cli(["config", "validate", "-c", file], { DB_PASSWORD: "pw" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /valid \(1 connection\)/);
    const okJson = await cli(["config", "validate", "-c", file, "--json"], { DB_PASSWORD: "pw" });
    assert.deepEqual(JSON.parse(okJson.stdout).connections, ["customers"]);

    const badFile = writeConfig(dir, GOOD().replace("port: 5432", "port: high").replace("access:", "acces:"));
    const bad = await cli(["config", "validate", "-c", badFile]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /connections\[0\]\.target\.port: expected a number/);
    assert.match(bad.stderr, /connections\[0\]\.credentials\.password: environment variable DB_PASSWORD is not set/);
    assert.match(bad.stderr, /connections\[0\]: unknown key "acces"/);
    const badJson = await cli(["config", "validate", "-c", badFile, "--json"]);
    assert.equal(badJson.code, 2);
    assert.ok(JSON.parse(badJson.stdout).problems.length >= 3);
  });

  it("policy check judges an HTTP request as the listener does: canonical path, the connection's case rule, refused forms", async () => {
    const dir = mkdtempSync(join(tmpdir(), "portcullis-cli-"));
    const connection = (name: string, caseSensitive: boolean) => `  - name: ${name}
    type: http
    target: { url: "http://127.0.0.1:9" }
    paths_case_sensitive: ${caseSensitive}
    access: [agents]
`;
    const file = writeConfig(dir, `gateway:
  http: 127.0.0.1:0
  data_dir: ./data
identity:
  dev_issuer: true
connections:
${connection("shop", false)}${connection("strict", true)}rules:
  - name: no-refunds
    when: { http: { methods: [POST], paths: ["/v1/refunds/**"] } }
    action: deny
`);
    const check = async (conn: string, request: string) => {
      const r = await cli(["policy", "check", "-c", file, "--connection", conn, "--sub", "a", "--groups", "agents", "--http", request]);
      return { ...r, out: r.code === 0 ? JSON.parse(r.stdout) as { decision: string; rule: string | null } : undefined };
    };
    assert.equal((await check("shop", "POST /v1/refunds/9")).out?.rule, "no-refunds");
    // Default: paths match case-insensitively, as Express routes them; dot segments and encodings resolved.
    assert.equal((await check("shop", "POST /V1/REFUNDS/9")).out?.decision, "deny");
    assert.equal((await check("shop", "POST /v1/x/../%72efunds/9")).out?.decision, "deny");
    // paths_case_sensitive: the connection's target routes by case, and so does the check.
    assert.equal((await check("strict", "POST /V1/REFUNDS/9")).out?.decision, "allow");
    assert.equal((await check("strict", "POST /v1/refunds/9")).out?.decision, "deny");
    // A form the listener refuses before any rule is reported as such.
    const refused = await check("shop", "POST /v1//refunds/9");
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /refuses this path before any rule \(400\): an empty segment/);
  });

  it("issues dev tokens with groups, ttl and extra claims", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-cli-"));
    const file = writeConfig(dir, GOOD());
    const r = await cli(["token", "issue", "-c", file, "--sub", "agent-1", "--groups", "agents,readers", "--ttl", "5m", "--claim", "run_id=r1"], { DB_PASSWORD: "pw" });
    assert.equal(r.code, 0, r.stderr);
    const claims = decodeJwt(r.stdout.trim());
    assert.equal(claims.sub, "agent-1");
    assert.deepEqual(claims.groups, ["agents", "readers"]);
    assert.equal(claims.run_id, "r1");
    assert.equal(claims.exp! - claims.iat!, 300);

    const noDev = writeConfig(dir, GOOD().replace("dev_issuer: true", "dev_issuer: false\n  issuers: [{ issuer: 'https://idp.example.com/', audience: portcullis }]"));
    const refused = await cli(["token", "issue", "-c", noDev, "--sub", "x"], { DB_PASSWORD: "pw" });
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split("\n").length, 1, "one clear line");
    assert.match(refused.stderr, /dev_issuer is not enabled/);
  });

  it("serves /healthz, keeps its config on a bad SIGHUP reload and takes a good one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-cli-"));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const file = writeConfig(dir, GOOD(port));
    const secret = "cli-serve-Secret-7f3a9";
    const child = spawn(process.execPath, [BIN, "serve", "-c", file], { env: { ...process.env, DB_PASSWORD: secret }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b) => { stderr += b; });
    try {
      let health: Response | undefined;
      for (let i = 0; i < 100 && !health; i++) {
        health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        if (!health) await sleep(100);
      }
      assert.equal(health?.status, 200, stderr);
      writeConfig(dir, GOOD(port).replace("port: 5432", "port: nope"));
      child.kill("SIGHUP");
      for (let i = 0; i < 50 && !stderr.includes("reload refused"); i++) await sleep(100);
      assert.match(stderr, /configuration reload refused/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, "still serving after a bad reload");
      writeConfig(dir, GOOD(port));
      child.kill("SIGHUP");
      for (let i = 0; i < 50 && !stderr.includes("configuration reloaded"); i++) await sleep(100);
      assert.match(stderr, /configuration reloaded/);
      assert.ok(stderr.length > 0 && !stderr.includes(secret), "no secret in logs, even around a refused reload");
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });
});
