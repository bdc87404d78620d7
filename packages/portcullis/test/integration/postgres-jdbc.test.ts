/**
 * pgjdbc (Debian's libpostgresql-jdbc-java) through the gateway: the backend pid the driver got in
 * BackendKeyData (PGConnection.getBackendPID()) is the one `select pg_backend_pid()` returns and
 * the one on the session's own notifications, as it is straight to PostgreSQL.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const run = promisify(execFile);
const JDBC_JAR = "/usr/share/java/postgresql.jar";

const PID_CHECK = `
import java.sql.*;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

public class PidCheck {
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    p.setProperty("user", a[2]);
    p.setProperty("password", a[3]);
    p.setProperty("sslmode", "disable");
    try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + a[0] + "/" + a[1], p)) {
      PGConnection pg = c.unwrap(PGConnection.class);
      int server;
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select pg_backend_pid()")) { r.next(); server = r.getInt(1); }
      try (Statement s = c.createStatement()) { s.execute("listen jdbc_pid"); s.execute("notify jdbc_pid, 'mine'"); s.execute("select 1"); }
      PGNotification[] n = pg.getNotifications();
      System.out.println(pg.getBackendPID() + " " + server + " " + (n == null || n.length == 0 ? "none" : n[0].getPID() + " " + n[0].getName() + " " + n[0].getParameter()));
    }
  }
}
`;

describe("pgjdbc through the gateway", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    target = await startTarget();
    gw = await startTestGateway({ target });
    dir = mkdtempSync(join(tmpdir(), "portcullis-jdbc-"));
    writeFileSync(join(dir, "PidCheck.java"), PID_CHECK);
    await run("javac", ["-cp", JDBC_JAR, "-d", dir, join(dir, "PidCheck.java")]);
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = async (port: number, database: string, user: string, password: string) => {
    const { stdout } = await run("java", ["-cp", `${JDBC_JAR}:${dir}`, "PidCheck", String(port), database, user, password]);
    const [key, server, notified, channel, payload] = stdout.trim().split(" ");
    return { key, server, notified, channel, payload };
  };

  it("getBackendPID() equals pg_backend_pid() and the pid of its own notifications, as direct", async () => {
    for (const [side, r] of [
      ["direct", await check(target.pg.port, "app", UPSTREAM_USER, UPSTREAM_PASSWORD)],
      ["gateway", await check(gw.port, "app", "agent", await gw.token())],
    ] as const) {
      assert.equal(r.server, r.key, `${side}: pg_backend_pid() is the BackendKeyData pid`);
      assert.equal(r.notified, r.key, `${side}: the own notification carries it`);
      assert.deepEqual([r.channel, r.payload], ["jdbc_pid", "mine"], side);
    }
  });
});
