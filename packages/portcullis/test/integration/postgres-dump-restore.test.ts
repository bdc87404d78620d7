/**
 * pg_dump and restores through the gateway, as a database person would run them, with everything
 * allowed (no masking; one rule allowing what the classifier cannot read, such as the fast-path
 * calls pg_dump reads large objects with). Every dump format through the gateway must equal the
 * dump taken straight from the target (ignoring the random key of `\restrict`), and a restore
 * through the gateway (pg_restore -d, psql -f with ON_ERROR_STOP) must exit 0 and re-dump
 * identically.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { LocalPostgres } from "../../src/quickstart/local-postgres.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTestGateway, type TestGateway } from "../support/gateway.js";

const run = promisify(execFile);
const USER = { name: UPSTREAM_USER, password: UPSTREAM_PASSWORD };
const DATABASES = ["app", "restore_a", "restore_b"];

const SCHEMA = `
  create type mood as enum ('happy', 'sad');
  create table customers (id serial primary key, name text not null, mood mood, tags text[], data jsonb, photo bytea, created timestamptz default '2026-01-01');
  insert into customers (name, mood, tags, data, photo)
    select 'customer ' || g, (array['happy','sad'])[1 + g % 2]::mood, array['t' || g, 'quote''s', 'tab\there'], jsonb_build_object('g', g, 'nested', jsonb_build_array(g, null)), decode(md5(g::text), 'hex')
    from generate_series(1, 300) g;
  create table orders (id bigint generated always as identity primary key, customer int references customers(id), amount numeric(12,2) check (amount >= 0), note text);
  insert into orders (customer, amount, note) select 1 + g % 300, g * 1.5, case when g % 7 = 0 then null else E'line\\nbreak ' || g end from generate_series(1, 1000) g;
  create index orders_customer on orders (customer);
  create view big_orders as select o.id, c.name, o.amount from orders o join customers c on c.id = o.customer where o.amount > 100;
  create materialized view mood_counts as select mood, count(*) from customers group by mood;
  create function bump(x int) returns int language sql immutable as $$ select x + 1 $$;
  create function audit_trigger() returns trigger language plpgsql as $$ begin new.note := coalesce(new.note, 'n/a'); return new; end $$;
  create trigger orders_note before insert on orders for each row execute function audit_trigger();
  create sequence invoice_numbers start 1000;
  select setval('invoice_numbers', 1234);
  comment on table customers is 'people who buy things';
  create schema reporting;
  create table reporting.daily (day date primary key, total numeric);
  insert into reporting.daily select d::date, 10 from generate_series('2026-01-01'::date, '2026-01-31', '1 day') d;
  select lo_from_bytea(0, 'a large object, read by pg_dump over fast-path calls');
`;

describe("pg_dump and restores through the gateway", () => {
  let target: LocalPostgres;
  let gw: TestGateway;
  let dir: string;
  let gatewayEnv: NodeJS.ProcessEnv;
  let directEnv: NodeJS.ProcessEnv;

  before(async () => {
    target = await LocalPostgres.start({ authMethod: "scram-sha-256", ssl: false, users: [USER], databases: DATABASES.map((name) => ({ name, owner: UPSTREAM_USER })) });
    const connection = (name: string) => ({
      name, type: "postgres", target: { host: target.host, port: target.port, database: name, tls: "disable" },
      credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, access: ["agents"],
    });
    gw = await startTestGateway({
      target: { pg: target, stop: () => target.stop() },
      connections: DATABASES.map(connection),
      overrides: { rules: [{ name: "tools-may-do-anything", when: { sql: { statements: ["unknown"] } }, action: "allow" }] },
    });
    const direct = new pg.Client(target.clientConfig(USER, "app"));
    await direct.connect();
    await direct.query(SCHEMA);
    await direct.end();
    dir = mkdtempSync(join(tmpdir(), "portcullis-dump-"));
    const base = { ...process.env, PGSSLMODE: "disable", PGHOST: "127.0.0.1", PGCONNECT_TIMEOUT: "10" };
    gatewayEnv = { ...base, PGPORT: String(gw.port), PGUSER: "agent", PGPASSWORD: await gw.token("dba-1", ["agents"], 3600) };
    directEnv = { ...base, PGPORT: String(target.port), PGUSER: UPSTREAM_USER, PGPASSWORD: UPSTREAM_PASSWORD };
  });
  after(async () => {
    await gw?.stop();
    await target?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tool = async (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> => {
    try {
      return (await run(cmd, args, { env, maxBuffer: 256 * 1024 * 1024 })).stdout;
    } catch (err) {
      throw new Error(`${cmd} ${args.join(" ")} failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
  };
  /** A plain dump without the random `\restrict` key pg_dump 15.14+ writes. */
  const canon = (sql: string) => sql.split("\n").filter((l) => !/^\\(un)?restrict /.test(l)).join("\n");
  const plain = async (env: NodeJS.ProcessEnv, database: string) => canon(await tool("pg_dump", ["-d", database, "-Fp"], env));

  it("pg_dump -Fp through the gateway equals the direct dump", async () => {
    const through = await plain(gatewayEnv, "app");
    assert.match(through, /COPY public\.customers/);
    assert.match(through, /lo_from_bytea|lo_create|BLOB/i, "the large object is in the dump");
    assert.equal(through, await plain(directEnv, "app"));
  });

  it("pg_dump -Fc and -Fd -j 2 through the gateway hold the same dump as direct", async () => {
    for (const [format, extra] of [["c", []], ["d", ["-j", "2"]]] as const) {
      const paths = { gateway: join(dir, `gw.${format}`), direct: join(dir, `direct.${format}`) };
      await tool("pg_dump", ["-d", "app", `-F${format}`, ...extra, "-f", paths.gateway], gatewayEnv);
      await tool("pg_dump", ["-d", "app", `-F${format}`, ...extra, "-f", paths.direct], directEnv);
      const through = canon(await tool("pg_restore", ["-f", "-", paths.gateway], directEnv));
      assert.match(through, /COPY public\.orders/, `-F${format}`);
      assert.equal(through, canon(await tool("pg_restore", ["-f", "-", paths.direct], directEnv)), `-F${format}`);
    }
  });

  it("pg_restore -d through the gateway exits 0 and the restored database re-dumps identically", async () => {
    const archive = join(dir, "restore.c");
    await tool("pg_dump", ["-d", "app", "-Fc", "-f", archive], directEnv);
    await tool("pg_restore", ["--exit-on-error", "-d", "restore_a", archive], gatewayEnv);
    assert.equal(await plain(directEnv, "restore_a"), await plain(directEnv, "app"));
  });

  it("psql -v ON_ERROR_STOP=1 -f of a plain dump through the gateway exits 0 and re-dumps identically", async () => {
    const file = join(dir, "restore.sql");
    await tool("pg_dump", ["-d", "app", "-Fp", "-f", file], directEnv);
    await tool("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "restore_b", "-f", file], gatewayEnv);
    assert.equal(await plain(directEnv, "restore_b"), await plain(directEnv, "app"));
    // psql's \encoding UTF8 (PQsetClientEncoding) goes through too.
    assert.match(await tool("psql", ["-X", "-d", "app", "-c", "\\encoding UTF8", "-c", "show client_encoding"], gatewayEnv), /UTF8/);
    assert.ok(readFileSync(file, "utf8").includes("SET client_encoding = 'UTF8';"));
  });
});
