/**
 * Real PostgreSQL clients get through the gateway exactly what they get from the target directly.
 * Every scenario runs twice, once through the gateway (database = connection name, password = a
 * token) and once straight to the target (app_user with its real password), and the two results
 * are compared: node-postgres, postgres.js, psql (byte for byte), pgbench and Python's psycopg2.
 * The one intended difference is SQL the gateway cannot parse: its policy refuses it (42501)
 * where PostgreSQL reports a syntax error (42601); that has a test of its own.
 * One target and one gateway serve the whole file.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import postgres from "postgres";
import {
  SYSTEM_PYTHON,
  assertSuccess,
  describeRun,
  libpqEnv,
  pythonEnv,
  requirePostgresClient,
  requirePsycopg2,
  run,
  type LibpqTarget,
} from "../support/clients.js";
import { UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";

const TEN_MB = 10 * 1024 * 1024;
const UNICODE = "Grüße ✓ 日本語 😀 Ωmega «quotes» 'single' \"double\" back\\slash";

type Side = "gateway" | "direct";

/** A hung client (or gateway) fails its block instead of stalling the whole run. */
const BLOCK = { timeout: 90_000 };

let target: TestTarget;
let gw: TestGateway;
let token: string;
let work: string;

/** node-postgres settings for one side. */
function pgConfig(side: Side): pg.ClientConfig {
  return side === "gateway"
    ? gw.clientConfig(token)
    : target.pg.clientConfig({ name: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, "app");
}

/** libpq settings (psql, pgbench, psycopg2) for one side. */
function libpq(side: Side, sslmode: LibpqTarget["sslmode"] = "prefer"): LibpqTarget {
  return side === "gateway"
    ? { host: gw.host, port: gw.port, user: "agent", password: token, database: "app", sslmode }
    : { host: target.pg.host, port: target.pg.port, user: UPSTREAM_USER, password: UPSTREAM_PASSWORD, database: "app", sslmode };
}

async function withPg<T>(side: Side, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(pgConfig(side));
  client.on("error", () => undefined); // surfaces through the awaited query
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A value as plain, comparable data: bytes as hex, dates as ISO text (or "Invalid Date"),
 * NaN/Infinity/-0/bigint tagged, objects without prototypes or class identity.
 */
function canon(v: unknown): unknown {
  if (v === undefined) return { undefined: true };
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0) ? v : { number: Object.is(v, -0) ? "-0" : String(v) };
  if (typeof v === "bigint") return { bigint: v.toString() };
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { bytes: Buffer.from(v).toString("hex") };
  if (v instanceof Date) return { date: Number.isNaN(v.getTime()) ? "Invalid Date" : v.toISOString() };
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = canon(x);
    return out;
  }
  return { [typeof v]: String(v) };
}

/** Runs the same scenario on both sides and asserts equal outcomes; returns the gateway's. */
async function sameOnBothSides<T>(what: string, scenario: (side: Side) => Promise<T>): Promise<T> {
  const gateway = await scenario("gateway");
  const direct = await scenario("direct");
  assert.deepStrictEqual(canon(gateway), canon(direct), `${what}: the gateway's result differs from a direct connection's`);
  return gateway;
}

function md5(data: string | Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

function pick(obj: object, keys: readonly string[]): Record<string, unknown> {
  const src = obj as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
  return out;
}

/**
 * Setup a block of tests needs (a client program, an initialised database), run once on first
 * use. When it fails, every test of the block fails with its message: nothing is skipped.
 */
function once<T>(fn: () => T | Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= Promise.resolve().then(fn));
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Number of backends of app_user currently running a statement that starts with `prefix`. */
async function activeQueries(prefix: string): Promise<number> {
  return withPg("direct", async (c) => {
    const r = await c.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()",
      [`${prefix}%`],
    );
    return r.rows[0]!.n;
  });
}

const FIXTURE_SQL = `
create table fixture (
  id int primary key, i2 int2, i4 int4, i8 int8, num numeric, f4 float4, f8 float8, ok bool, raw bytea,
  at timestamptz, ts timestamp, d date, tm time, iv interval, j json, jb jsonb, ints int[], texts text[],
  t text, vc varchar(20), ch char(3), u uuid, ip inet, pt point, rng int4range
);
insert into fixture values
  (1, 32767, -2147483648, 9223372036854775807, 12345678901234567890.123456789012345, 3.14159, 2.718281828459045, true,
   '\\x00010203fffe7f80', '2024-02-29 23:59:59.123456+00', '1999-12-31 23:59:59.999999', '2000-01-01', '12:34:56.789',
   '1 year 2 mons 3 days 04:05:06.789', '{"a": [1, 2.5, "x", null, true], "b": {"c": "ü"}}', '{"z": 1, "a": [1, {"k": null}]}',
   '{1,NULL,3}', '{"a b","c\\"d",NULL,"ü✓"}', '${UNICODE.replace(/'/g, "''")}', 'varchar ✓', 'abc',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '(1.5,-2)', '[1,10)'),
  (2, -1, 0, -9223372036854775808, -0.000000000000000000001, 'NaN', '-Infinity', false,
   '', '-infinity', 'infinity', '4713-01-01 BC', '00:00', '-1 days', '[]', '{}',
   '{}', '{}', '', '', '   ', '00000000-0000-0000-0000-000000000000', '::1', '(0,0)', 'empty'),
  (3, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
   null, null, null, null, null, null, null, null, null);
`;

before(async () => {
  target = await startTarget();
  gw = await startTestGateway({ target });
  token = await gw.token();
  work = mkdtempSync(join(tmpdir(), "portcullis-clients-"));
  await withPg("direct", (c) => c.query(FIXTURE_SQL));
});

after(async () => {
  await gw?.stop();
  await target?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------ node-postgres

/** A pg result as data. Temp tables get a fresh OID per session: `tableIds: false` leaves them out. */
function pgShape(r: pg.QueryResult, tableIds = true): Record<string, unknown> {
  const keys = ["name", "columnID", "dataTypeID", "dataTypeSize", "dataTypeModifier", "format", ...(tableIds ? ["tableID"] : [])];
  return { command: r.command, rowCount: r.rowCount, rows: r.rows, fields: r.fields.map((f) => pick(f, keys)) };
}

const PG_ERROR_FIELDS = [
  "name", "severity", "code", "message", "detail", "hint", "position", "internalPosition", "internalQuery", "where",
  "schema", "table", "column", "dataType", "constraint", "file", "line", "routine",
] as const;

/** Runs a statement; its result or its error, as comparable data. */
async function pgOutcome(c: pg.Client, q: string | pg.QueryConfig, values?: unknown[]): Promise<Record<string, unknown>> {
  try {
    const r = await c.query(q as string, values);
    return { ok: pgShape(r, false) };
  } catch (err) {
    assert.ok(err instanceof pg.DatabaseError, `expected a DatabaseError, got ${String(err)}`);
    return { error: pick(err, PG_ERROR_FIELDS) };
  }
}

const RAW = { getTypeParser: () => (v: unknown) => v } as unknown as pg.CustomTypesConfig;

describe("node-postgres through the gateway", BLOCK, () => {
  it("returns the same rows, types and metadata as a direct connection (simple and extended protocol)", async () => {
    const out = await sameOnBothSides("pg query set", (side) =>
      withPg(side, async (c) => {
        const res: Record<string, unknown> = {};
        // Simple query protocol: every type, NULLs, parsed by pg's default parsers.
        res.fixture = pgShape(await c.query("select * from fixture order by id"));
        // The same rows as the exact text the server sent.
        res.fixtureRaw = pgShape(await c.query({ text: "select * from fixture order by id", types: RAW }));
        // Several statements in one simple query.
        const multi = (await c.query("select 1 as a; select 'two' as b, null as c; values (1, 'x'), (2, 'y')")) as unknown as pg.QueryResult[];
        res.multi = multi.map((r) => pgShape(r));
        // Extended protocol with parameters of every kind; the Buffer goes in binary format.
        res.params = pgShape(
          await c.query(
            `select $1::int as n, $2::int8 as i8, $3::numeric as num, $4::bool as ok, $5::bytea as raw,
                    $6::timestamptz as at, $7::jsonb as jb, $8::int[] as ints, $9::text as t, $10::text[] as texts,
                    $11::float8 as f8, length($5::bytea) as rawlen, md5($5::bytea) as rawmd5`,
            [
              null, "9223372036854775807", "-12345678901234567890.123456789", true, Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]),
              new Date("2024-02-29T23:59:59.123Z"), { a: [1, "ü", null], b: { c: true } }, [1, null, 3], UNICODE, ["a b", 'c"d', null],
              -1.5e-300,
            ],
          ),
        );
        // A binary parameter with every byte value.
        const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        res.binaryParam = pgShape(await c.query("select $1::bytea as b, md5($1::bytea) as m", [allBytes]));
        // Binary result format (pg's binary parsers), for columns and for parameters.
        const binText = "select i2, i4, i8, f8, ok, at, t, raw from fixture order by id";
        // (`binary` is a pg query option that @types/pg does not declare.)
        res.binary = pgShape(await c.query({ text: binText, binary: true } as pg.QueryConfig));
        res.binaryParams = pgShape(
          await c.query({
            text: "select $1::int4 as a, $2::int8 as b, $3::text as c, $4::bool as d, $5::bytea as e",
            values: [7, "123456789012", UNICODE, false, allBytes],
            binary: true,
          } as pg.QueryConfig),
        );
        // Many rows: DataRow messages spanning many socket chunks.
        const many = await c.query("select g, md5(g::text) as h, repeat('z', g % 100) as pad from generate_series(1, 20000) g");
        res.many = { rowCount: many.rowCount, digest: md5(JSON.stringify(many.rows)) };
        // Named prepared statement, parsed once and executed several times.
        const named: unknown[] = [];
        for (let i = 0; i < 6; i++) {
          named.push(pgShape(await c.query({ name: "q1", text: "select $1::int * 2 as doubled, $2::text as label, $3::bytea as b", values: [i, `v${i} ✓`, Buffer.from([i, 255 - i])] })));
        }
        res.named = named;
        res.namedStatements = pgShape(await c.query("select name, statement, parameter_types::text from pg_prepared_statements order by name"));
        // A portal executed 100 rows at a time (Execute with a row limit, PortalSuspended, Execute again).
        res.portalRows = pgShape(await c.query({ text: "select g, md5(g::text) as h from generate_series(1, 1000) g", rows: 100 } as pg.QueryConfig));
        // Rows mode and an empty result.
        res.arrays = pgShape(await c.query({ text: "select 1 as a, 2 as a", rowMode: "array" }));
        res.empty = pgShape(await c.query("select * from fixture where false"));
        // Empty query strings (EmptyQueryResponse), simple and extended: pgjdbc's isValid() sends one.
        res.emptyQuery = await pgOutcome(c, "");
        res.emptyQueryExtended = await pgOutcome(c, { text: "", queryMode: "extended" } as pg.QueryConfig);
        res.emptyQueryNamed = await pgOutcome(c, { name: "ping", text: "" });
        res.onlySemicolons = await pgOutcome(c, " ; ;");
        return res;
      }),
    );
    // Spot checks that the comparison compared something real.
    const params = out.params as { rows: Record<string, unknown>[] };
    assert.equal(params.rows[0]!.t, UNICODE);
    assert.equal(params.rows[0]!.n, null);
    assert.equal(params.rows[0]!.rawlen, 7);
    assert.equal((out.named as unknown[]).length, 6);
    assert.deepEqual((out.namedStatements as { rows: { name: string }[] }).rows.map((r) => r.name), ["q1"]);
  });

  it("carries a 10 MB result row and a 10 MB parameter both ways", async () => {
    const bigText = randomBytes(TEN_MB * 0.75).toString("base64"); // 10 MB of text
    const bigBytes = randomBytes(TEN_MB);
    await sameOnBothSides("pg 10 MB", (side) =>
      withPg(side, async (c) => {
        const t0 = performance.now();
        const r = await c.query<{ big: string }>("select repeat('x', 10*1024*1024) as big");
        const big = r.rows[0]!.big;
        assert.equal(big.length, TEN_MB);
        assert.ok(big === "x".repeat(TEN_MB), "10 MB row content");
        await c.query("create temp table big (t text, b bytea)");
        const ins = await c.query("insert into big values ($1, $2)", [bigText, bigBytes]);
        const back = await c.query<{ t: string; b: Buffer; tl: number; bl: number; tm: string; bm: string }>(
          "select t, b, length(t) as tl, length(b) as bl, md5(t) as tm, md5(b) as bm from big",
        );
        const row = back.rows[0]!;
        assert.ok(row.t === bigText, `${side}: 10 MB text parameter read back differs`);
        assert.ok(row.b.equals(bigBytes), `${side}: 10 MB bytea parameter read back differs`);
        // The session is still in step afterwards.
        const after = await c.query("select 'still in sync' as s");
        return {
          rowLength: big.length, inserted: ins.rowCount, tl: row.tl, bl: row.bl,
          tm: row.tm, bm: row.bm, localT: md5(bigText), localB: md5(bigBytes), after: after.rows, ms: performance.now() - t0 < 30_000,
        };
      }),
    );
  });

  it("reports errors mid-transaction exactly like the target, and the session stays usable", async () => {
    const out = await sameOnBothSides("pg errors", (side) =>
      withPg(side, async (c) => {
        const steps: Record<string, unknown>[] = [];
        const step = async (q: string | pg.QueryConfig, values?: unknown[]) => steps.push(await pgOutcome(c, q, values));
        await step("begin");
        await step("select 1/0");
        await step("select 1");
        await step({ name: "in_failed_tx", text: "select $1::int", values: [1] });
        await step("rollback");
        await step("select 'usable' as s");
        // A bad parameter (extended protocol), a missing table, an unknown operator.
        await step("select $1::int as n", ["not a number"]);
        await step("select * from no_such_table");
        await step("select 1 +* 2");
        // Constraint violation with detail, schema, table and constraint fields.
        await step("create temp table uniq (id int primary key, v text not null)");
        await step("insert into uniq values (1, 'a')");
        await step("insert into uniq values ($1, $2)", [1, "b"]);
        await step("insert into uniq values (2, null)");
        // Savepoints: an error rolled back to a savepoint keeps the transaction.
        await step("begin");
        await step("savepoint s1");
        await step("select 1/0");
        await step("rollback to savepoint s1");
        await step("insert into uniq values (3, 'c')");
        await step("commit");
        await step("select id, v from uniq order by id");
        // An error inside a function, with context.
        await step("do $$ begin perform 1/0; end $$");
        await step("select 'still usable' as s");
        return steps;
      }),
    );
    const codes = out.map((s) => (s.error as { code?: string } | undefined)?.code ?? "ok");
    assert.deepEqual(codes, [
      "ok", "22012", "25P02", "25P02", "ok", "ok", "22P02", "42P01", "42883", "ok", "ok", "23505", "23502",
      "ok", "ok", "22012", "ok", "ok", "ok", "ok", "22012", "ok",
    ]);
  });

  it("answers unparseable SQL in PostgreSQL's place, as PostgreSQL does (42601, message, position)", async () => {
    // Text the parser rejects never reaches the target: the gateway answers with the parser's own
    // error (it is PostgreSQL's parser), and everything else — the aborted transaction, the pipeline
    // discarded to Sync, the usable session afterwards — is as PostgreSQL does it.
    const syntaxErrors = new Set([2, 6, 8]);
    const scenario = (side: Side) =>
      withPg(side, async (c) => {
        const steps: Record<string, unknown>[] = [];
        steps.push(await pgOutcome(c, "begin"));
        steps.push(await pgOutcome(c, "select 1 as one"));
        steps.push(await pgOutcome(c, "select 1 +"));
        steps.push(await pgOutcome(c, "select 2 as two"));
        steps.push(await pgOutcome(c, "rollback"));
        steps.push(await pgOutcome(c, "select 3 as three"));
        steps.push(await pgOutcome(c, { text: "selec $1", values: [1] }));
        steps.push(await pgOutcome(c, { name: "after_refusal", text: "select $1::int as n", values: [4] }));
        steps.push(await pgOutcome(c, "select 'ééé' as e, 1 2"));
        return steps;
      });
    const gateway = await scenario("gateway");
    const direct = await scenario("direct");
    for (const i of syntaxErrors) {
      assert.equal((direct[i]!.error as { code: string }).code, "42601", `direct step ${i}`);
      const fields = ["code", "severity", "message", "position"];
      assert.deepEqual(pick(gateway[i]!.error as object, fields), pick(direct[i]!.error as object, fields), `step ${i}`);
    }
    const others = (steps: Record<string, unknown>[]) => steps.filter((_, i) => !syntaxErrors.has(i));
    assert.deepStrictEqual(canon(others(gateway)), canon(others(direct)));
    assert.equal((gateway[3]!.error as { code: string }).code, "25P02");
  });

  it("relays notices", async () => {
    const out = await sameOnBothSides("pg notices", (side) =>
      withPg(side, async (c) => {
        const notices: Record<string, unknown>[] = [];
        c.on("notice", (n) => notices.push(pick(n, [...PG_ERROR_FIELDS])));
        await c.query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$");
        await c.query("DO $$ BEGIN RAISE WARNING 'careful ✓' USING DETAIL = 'some detail', HINT = 'a hint', ERRCODE = '01000'; END $$");
        await c.query("drop table if exists no_such_table_here");
        await c.query("select $1::int as n", [1]); // notices stay in order with results
        return notices;
      }),
    );
    assert.equal(out.length, 3);
    assert.equal(out[0]!.message, "hello 42");
    assert.equal(out[0]!.severity, "NOTICE");
    assert.equal(out[1]!.severity, "WARNING");
    assert.equal(out[1]!.hint, "a hint");
  });

  it("delivers LISTEN/NOTIFY notifications to a listener connected through the gateway", async () => {
    const channel = "chan ✓";
    const out = await sameOnBothSides("pg LISTEN/NOTIFY", (listenerSide) =>
      withPg(listenerSide, async (listener) => {
        const got: { channel: string; payload: string | undefined }[] = [];
        listener.on("notification", (n) => got.push({ channel: n.channel, payload: n.payload }));
        await listener.query(`listen "${channel}"`);
        await listener.query("listen other");
        // From another connection through the gateway, from a direct one, and from a transaction.
        await withPg("gateway", async (s) => {
          await s.query("select pg_notify($1, $2)", [channel, `payload ✓ via gateway`]);
          await s.query(`notify "${channel}"`);
        });
        await withPg("direct", (s) => s.query(`notify "${channel}", 'payload from a direct connection'`));
        await withPg("gateway", async (s) => {
          await s.query("begin");
          await s.query("notify other, 'in tx 1'");
          await s.query(`select pg_notify('other', repeat('p', 7000))`);
          await s.query("commit");
        });
        // Arrives while the listener is idle: nothing asked for it.
        await waitFor(`5 notifications on the ${listenerSide} listener`, () => got.length >= 5);
        await listener.query(`unlisten *`);
        return got;
      }),
    );
    assert.deepEqual(out.map((n) => n.payload?.slice(0, 40)), ["payload ✓ via gateway", "", "payload from a direct connection", "in tx 1", "p".repeat(40)]);
  });
});

// ------------------------------------------------------------------------------------ postgres.js

type Sql = postgres.Sql<Record<string, never>>;

function pgjs(side: Side, opts: { ssl?: boolean | object; max?: number; onnotice?: (n: postgres.Notice) => void } = {}): Sql {
  const base = side === "gateway"
    ? { host: gw.host, port: gw.port, user: "agent", pass: token, database: "app" }
    : { host: target.pg.host, port: target.pg.port, user: UPSTREAM_USER, pass: UPSTREAM_PASSWORD, database: "app" };
  return postgres({
    ...base,
    ssl: (opts.ssl ?? false) as false,
    max: opts.max ?? 1,
    connect_timeout: 10,
    idle_timeout: 0,
    onnotice: opts.onnotice ?? (() => undefined),
  }) as unknown as Sql;
}

function pgjsShape(r: postgres.RowList<postgres.Row[]>): Record<string, unknown> {
  return {
    rows: [...r],
    count: r.count,
    command: r.command,
    columns: r.columns?.map((c) => ({ name: c.name, type: c.type, table: c.table, number: c.number })),
  };
}

const PGJS_ERROR_FIELDS = [
  "name", "severity_local", "severity", "code", "message", "position", "file", "line", "routine", "detail", "hint",
  "internal_position", "internal_query", "where", "schema_name", "table_name", "column_name", "data", "type_name", "constraint_name",
] as const;

async function pgjsOutcome(q: Promise<postgres.RowList<postgres.Row[]>>): Promise<Record<string, unknown>> {
  try {
    return { ok: pgjsShape(await q) };
  } catch (err) {
    return { error: pick(err as object, PGJS_ERROR_FIELDS) };
  }
}

/** The postgres.js scenario: extended protocol with its prepared-statement cache, pipelining, simple queries, COPY. */
async function pgjsQuerySet(sql: Sql, notices: Record<string, unknown>[]): Promise<Record<string, unknown>> {
  const res: Record<string, unknown> = {};
  res.fixture = pgjsShape(await sql`select * from fixture order by id`);
  res.params = pgjsShape(await sql`
    select ${null}::int as n, ${"9223372036854775807"}::int8 as i8, ${"-12345678901234567890.123456789"}::numeric as num,
           ${true}::bool as ok, ${Buffer.from([0, 1, 2, 0x7f, 0x80, 0xff])}::bytea as raw,
           ${new Date("2024-02-29T23:59:59.123Z")}::timestamptz as at, ${sql.json({ a: [1, "ü", null] })}::jsonb as jb,
           ${sql.array([1, 2, 3])}::int[] as ints, ${UNICODE}::text as t`);
  // The same statement again and again: postgres.js prepares it once and re-binds it.
  const repeated: unknown[] = [];
  for (let i = 0; i < 6; i++) repeated.push(pgjsShape(await sql`select ${i}::int * 2 as doubled, ${`v${i}`}::text as label`));
  res.repeated = repeated;
  res.preparedOnTarget = [...(await sql`select count(*)::int as n from pg_prepared_statements where statement like ${"select $1::int * 2 as doubled%"}`)];
  // Pipelined: many queries in flight on the one connection before any answer is read.
  const pipelined = await Promise.all(
    Array.from({ length: 100 }, (_, i) => sql`select ${i}::int as i, md5(${String(i)}) as h, ${i % 3 === 0 ? null : "x"}::text as maybe`),
  );
  res.pipelined = pipelined.map(pgjsShape);
  // Simple query protocol (sql.unsafe without parameters), several statements at once.
  const multi = (await sql.unsafe("select 1 as a, null::text as b; select 'two' as c; select * from fixture order by id")) as unknown as postgres.RowList<postgres.Row[]>[];
  res.unsafeMulti = multi.map(pgjsShape);
  res.unsafeParams = pgjsShape(await sql.unsafe("select $1::int + 1 as n, $2::text as t", [41, UNICODE]));
  // A cursor: the portal executed 7 rows at a time, inside a transaction.
  res.cursor = await sql.begin(async (tx) => {
    const batches: number[] = [];
    await tx`select g, md5(g::text) as h from generate_series(1, 500) g`.cursor(7, (rows) => {
      batches.push(rows.length);
    });
    return { batches: batches.length, rows: batches.reduce((a, b) => a + b, 0) };
  });
  const many = await sql`select g, md5(g::text) as h from generate_series(1, 20000) g`;
  res.many = { count: many.count, digest: md5(JSON.stringify([...many])) };
  // 10 MB each way.
  const big = await sql`select repeat('x', 10*1024*1024) as big`;
  const bigOut = String(big[0]!.big);
  const bigIn = randomBytes(TEN_MB * 0.75).toString("base64");
  await sql`create temp table pgjs_big (t text)`;
  await sql`insert into pgjs_big values (${bigIn})`;
  const back = await sql`select t, md5(t) as m from pgjs_big`;
  res.big = { outLength: bigOut.length, outOk: bigOut === "x".repeat(TEN_MB), inOk: back[0]!.t === bigIn, inMd5Ok: back[0]!.m === md5(bigIn) };
  // Errors mid-transaction on a reserved connection.
  const r = await sql.reserve();
  try {
    const steps: Record<string, unknown>[] = [];
    steps.push(await pgjsOutcome(r`begin`));
    steps.push(await pgjsOutcome(r`select 1/0`));
    steps.push(await pgjsOutcome(r`select ${1}::int as n`));
    steps.push(await pgjsOutcome(r`rollback`));
    steps.push(await pgjsOutcome(r`select ${"abc"}::int as n`));
    steps.push(await pgjsOutcome(r.unsafe("select 1 +* 2")));
    steps.push(await pgjsOutcome(r`select 'usable' as s`));
    res.errors = steps;
  } finally {
    r.release();
  }
  // Notices.
  await sql`DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$`;
  res.notices = [...notices];
  // COPY in and out.
  await sql`create temp table pgjs_copy (id int, name text, data bytea)`;
  const lines = Array.from({ length: 30000 }, (_, i) => `${i}\tname ${i} ✓\t\\\\x${(i % 65536).toString(16).padStart(4, "0")}\n`);
  lines.push("30000\t\\N\t\\N\n");
  const writable = await sql`copy pgjs_copy from stdin`.writable();
  await pipeline(Readable.from(lines), writable);
  res.copyCount = (await sql`select count(*)::int as n, count(name)::int as named, sum(length(data))::int as bytes from pgjs_copy`)[0];
  const readable = await sql`copy (select * from pgjs_copy order by id) to stdout`.readable();
  // Flowing mode on purpose: postgres.js 3.4 pauses its socket when a push into this stream
  // returns false and resumes it only from read(); if CopyDone arrives in the same chunk, the
  // ended stream never calls read() again and the connection hangs (seen with and without the
  // gateway when consuming with for-await). A 'data' listener keeps the buffer empty.
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    readable.on("data", (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
    readable.once("end", resolve);
    readable.once("error", reject);
  });
  const copied = Buffer.concat(chunks);
  res.copyOut = { bytes: copied.length, md5: md5(copied), roundTrip: copied.toString("utf8") === lines.join("") };
  res.afterCopy = pgjsShape(await sql`select 'after copy' as s`);
  return res;
}

describe("postgres.js through the gateway", BLOCK, () => {
  it("returns the same results as a direct connection (prepared statements, pipelining, simple queries, COPY, 10 MB)", async () => {
    const out = await sameOnBothSides("postgres.js query set", async (side) => {
      const notices: Record<string, unknown>[] = [];
      const sql = pgjs(side, { onnotice: (n) => notices.push(pick(n, [...PGJS_ERROR_FIELDS])) });
      try {
        return await pgjsQuerySet(sql, notices);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
    assert.deepEqual(out.big, { outLength: TEN_MB, outOk: true, inOk: true, inMd5Ok: true });
    assert.deepEqual(out.copyCount, { n: 30001, named: 30000, bytes: 60000 });
    assert.equal((out.copyOut as { roundTrip: boolean }).roundTrip, true);
    const codes = (out.errors as Record<string, { code?: string }>[]).map((s) => s.error?.code ?? "ok");
    assert.deepEqual(codes, ["ok", "22012", "25P02", "ok", "22P02", "42883", "ok"]);
    assert.equal((out.notices as { message: string }[])[0]?.message, "hello 42");
    assert.deepEqual(out.preparedOnTarget, [{ n: 1 }], "the repeated statement was prepared once, on the target");
    assert.deepEqual(out.cursor, { batches: 72, rows: 500 });
  });

  it("works over TLS to the gateway (ssl: { rejectUnauthorized: false })", async () => {
    // With an ssl object postgres.js insists on TLS: a gateway answering 'N' would fail the connection.
    const tlsSql = pgjs("gateway", { ssl: { rejectUnauthorized: false } });
    const plainSql = pgjs("direct");
    try {
      const q = (sql: Sql) => sql`select ${UNICODE}::text as t, ${Buffer.from([1, 2, 3])}::bytea as b, * from fixture order by id`;
      const overTls = pgjsShape(await q(tlsSql));
      const direct = pgjsShape(await q(plainSql));
      assert.deepStrictEqual(canon(overTls), canon(direct));
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => tlsSql`select ${i}::int as i`));
      assert.deepEqual(many.map((r) => r[0]!.i), Array.from({ length: 20 }, (_, i) => i));
      const big = await tlsSql`select repeat('x', 10*1024*1024) as big`;
      assert.ok(big[0]!.big === "x".repeat(TEN_MB), "10 MB row over TLS");
    } finally {
      await tlsSql.end({ timeout: 5 });
      await plainSql.end({ timeout: 5 });
    }
  });

  for (const ssl of [false, true]) {
    it(`cancels the right upstream backend (${ssl ? "cancel request over TLS" : "plaintext"})`, async () => {
      const sqlOpts = ssl ? { ssl: { rejectUnauthorized: false } } : {};
      const victim = pgjs("gateway", sqlOpts);
      const bystander = pgjs("gateway", sqlOpts);
      const direct = pgjs("direct");
      try {
        // Warm up both connections so the cancel races nothing but the sleeps.
        await victim`select 1`;
        await bystander`select 1`;
        const sleeper = victim`select pg_sleep(10) as slept`;
        const other = bystander`select pg_sleep(1.5) as slept, 'bystander finished' as s`;
        const sleeperOutcome = sleeper.then(() => undefined, (err: unknown) => err);
        const otherResult = other.then((r) => r[0]);
        await waitFor("both sleeps to be running on the target", async () => (await activeQueries("select pg_sleep(")) >= 2);
        const t0 = performance.now();
        sleeper.cancel();
        const err = (await sleeperOutcome) as postgres.PostgresError | undefined;
        const elapsed = performance.now() - t0;
        assert.ok(err, "the cancelled query succeeded");
        assert.equal(err.code, "57014", `expected query_canceled, got ${String(err)}`);
        assert.ok(elapsed < 5000, `the cancel took ${Math.round(elapsed)} ms`);
        // The other session through the gateway was not the one cancelled.
        assert.deepEqual(await otherResult, { slept: "", s: "bystander finished" });
        // The cancelled session keeps working, and its error looks like a direct connection's.
        assert.deepEqual([...(await victim`select 'alive' as s`)], [{ s: "alive" }]);
        const directSleeper = direct`select pg_sleep(10) as slept`;
        const directOutcome = directSleeper.then(() => undefined, (e: unknown) => e);
        await waitFor("the direct sleep to be running", async () => (await activeQueries("select pg_sleep(")) >= 1);
        directSleeper.cancel();
        const directErr = (await directOutcome) as object;
        assert.deepStrictEqual(pick(err, PGJS_ERROR_FIELDS), pick(directErr, PGJS_ERROR_FIELDS));
      } finally {
        await Promise.all([victim.end({ timeout: 5 }), bystander.end({ timeout: 5 }), direct.end({ timeout: 5 })]);
      }
    });
  }
});

// ------------------------------------------------------------------------------------ psql

const PSQL_MAIN = `\\pset null '<NULL>'
select current_user, current_database(), current_setting('server_encoding'), current_setting('client_encoding');
select * from fixture order by id;
select null::int as n, 9223372036854775807::int8, 123456789.000000001::numeric, true, '\\x00ff10'::bytea,
       '2024-02-29 23:59:59.999999+00'::timestamptz, '{"a":[1,2,{"b":null}]}'::json, '{"b":2,"a":1}'::jsonb,
       array[1,null,3]::int[], array['a b','c"d']::text[], 'Grüße ✓ 日本語 😀'::text;
select g, md5(g::text) from generate_series(1, 5000) g;
select length(repeat('x', 3000000)), md5(repeat('ab', 2000000));
select repeat('y', 300000) as wide;
create temp table t (id int primary key, name text, data bytea, at timestamptz);
\\copy t from 'in.tsv'
copy t from stdin;
2000\tinline ✓\t\\\\x0102\t2024-01-01 00:00:00+00
2001\t\\N\t\\N\t\\N
\\.
copy t to stdout;
copy t to stdout with (format csv, header, force_quote *);
copy (select * from t order by id) to stdout with (format binary);
\\copy t to 'out.tsv'
\\copy (select id, name from t order by id) to stdout
select count(*), sum(id) from t;
prepare p(int) as select $1 * 2 as doubled;
execute p(21);
execute p(50);
deallocate p;
select $$dollar 'quoted' ✓$$ as s \\gset
\\echo :s
select 1 as a, 'two' as b \\gx
begin;
declare c cursor for select g from generate_series(1, 100) g;
fetch 10 from c;
fetch all from c;
close c;
commit;
\\set FETCH_COUNT 7
select g from generate_series(1, 50) g;
\\unset FETCH_COUNT
select 'done';
`;

const PSQL_ERRORS = `\\set VERBOSITY verbose
begin;
select 1/0;
select 1;
\\echo LAST_ERROR_SQLSTATE=:LAST_ERROR_SQLSTATE
rollback;
select 'after rollback';
select * from nonexistent_table;
select 1 +* 2;
create temp table u (id int primary key);
insert into u values (1);
insert into u values (1);
DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$;
DO $$ BEGIN RAISE WARNING 'careful ✓' USING DETAIL = 'some detail', HINT = 'a hint'; END $$;
select 'end';
`;

/** 1000 rows of tab-separated input with NULLs, bytea escapes and unicode. */
function copyInput(): string {
  const rows: string[] = [];
  for (let i = 1; i <= 1000; i++) {
    const name = i % 10 === 0 ? "\\N" : `name ${i} ✓ tab\\there`;
    const data = i % 7 === 0 ? "\\N" : `\\\\x${i.toString(16).padStart(6, "0")}`;
    rows.push(`${i}\t${name}\t${data}\t2024-01-01 00:00:00+00`);
  }
  return `${rows.join("\n")}\n`;
}

describe("psql through the gateway", BLOCK, () => {
  const psqlBin = once(() => requirePostgresClient("psql"));

  /** Runs a psql script file in a fresh folder holding in.tsv; returns the run and the \copy output file. */
  async function psqlScript(name: string, script: string, t: LibpqTarget, stopOnError: boolean) {
    const dir = mkdtempSync(join(work, `psql-${name}-`));
    writeFileSync(join(dir, "script.sql"), script);
    writeFileSync(join(dir, "in.tsv"), copyInput());
    const r = await run(await psqlBin(), ["-X", "-A", "-t", "-v", `ON_ERROR_STOP=${stopOnError ? 1 : 0}`, "-f", "script.sql"], {
      env: libpqEnv(t), cwd: dir, timeoutMs: 30_000,
    });
    let outFile: Buffer | undefined;
    try {
      outFile = readFileSync(join(dir, "out.tsv"));
    } catch {
      outFile = undefined;
    }
    return { r, outFile };
  }

  it("prints byte-identical output for a script with \\copy, COPY TO STDOUT and inline COPY FROM STDIN (sslmode prefer and disable)", async () => {
    const direct = await psqlScript("direct", PSQL_MAIN, libpq("direct"), true);
    assertSuccess(direct.r, "psql direct");
    assert.ok(direct.outFile && direct.outFile.length > 0, "direct \\copy wrote nothing");
    for (const sslmode of ["prefer", "disable"] as const) {
      const via = await psqlScript(`gw-${sslmode}`, PSQL_MAIN, libpq("gateway", sslmode), true);
      assertSuccess(via.r, `psql through the gateway (sslmode=${sslmode})`);
      assert.ok(via.r.stdout.equals(direct.r.stdout), `psql stdout differs (sslmode=${sslmode})\n--- gateway\n${describeRun(via.r)}\n--- direct\n${describeRun(direct.r)}`);
      assert.equal(via.r.stderr.toString(), direct.r.stderr.toString(), `psql stderr differs (sslmode=${sslmode})`);
      assert.ok(via.outFile?.equals(direct.outFile), `\\copy to file differs (sslmode=${sslmode})`);
    }
    const text = direct.r.stdout.toString("utf8");
    assert.match(text, /^app_user\|app\|UTF8\|UTF8$/m);
    assert.match(text, /^COPY 1000$/m);
    assert.match(text, /^done$/m);
    assert.equal(direct.outFile!.toString("utf8").split("\n").length, 1003);
  });

  it("prints byte-identical errors, notices and warnings (ON_ERROR_STOP off, VERBOSITY verbose)", async () => {
    const direct = await psqlScript("err-direct", PSQL_ERRORS, libpq("direct"), false);
    const via = await psqlScript("err-gw", PSQL_ERRORS, libpq("gateway"), false);
    assert.equal(direct.r.code, 0, describeRun(direct.r));
    assert.equal(via.r.code, 0, describeRun(via.r));
    assert.equal(via.r.stdout.toString(), direct.r.stdout.toString(), "stdout differs");
    assert.equal(via.r.stderr.toString(), direct.r.stderr.toString(), "stderr differs");
    const err = via.r.stderr.toString();
    for (const expected of ["22012", "25P02", "42P01", "42883", "23505", "NOTICE:  00000: hello 42", "WARNING:  01000: careful ✓", "HINT:  a hint"]) {
      assert.ok(err.includes(expected), `stderr lacks ${expected}:\n${err}`);
    }
    assert.match(via.r.stdout.toString(), /LAST_ERROR_SQLSTATE=25P02/);
  });

  it("runs -c commands identically, and negotiates TLS with sslmode=prefer", async () => {
    const args = [
      "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
      "-c", "select * from fixture order by id",
      "-c", "copy (select id, t, raw from fixture order by id) to stdout",
      "-c", "select 1; select 2; select 'three'",
    ];
    const psql = await psqlBin();
    const direct = await run(psql, args, { env: libpqEnv(libpq("direct")) });
    const via = await run(psql, args, { env: libpqEnv(libpq("gateway")) });
    assertSuccess(direct, "psql -c direct");
    assertSuccess(via, "psql -c through the gateway");
    assert.ok(via.stdout.equals(direct.stdout), `psql -c stdout differs\n${describeRun(via)}\n${describeRun(direct)}`);
    const info = await run(psql, ["-X", "-c", "\\conninfo"], { env: libpqEnv(libpq("gateway", "prefer")) });
    assertSuccess(info, "psql \\conninfo");
    assert.match(info.stdout.toString(), /SSL connection \(protocol: TLS/, describeRun(info));
    const plain = await run(psql, ["-X", "-c", "\\conninfo"], { env: libpqEnv(libpq("gateway", "disable")) });
    assertSuccess(plain, "psql \\conninfo sslmode=disable");
    assert.doesNotMatch(plain.stdout.toString(), /SSL connection/, describeRun(plain));
  });

  it("cancels a running statement on Ctrl-C (libpq's cancel request)", async () => {
    const child = spawn(await psqlBin(), ["-X", "-A", "-t", "-c", "select pg_sleep(10)"], { env: libpqEnv(libpq("gateway", "prefer")), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await waitFor("psql's sleep to be running on the target", async () => (await activeQueries("select pg_sleep(")) >= 1, 10_000);
      const t0 = performance.now();
      child.kill("SIGINT");
      const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000))]);
      assert.notEqual(code, "timeout", `psql did not finish within 5 s of SIGINT; stderr: ${stderr}`);
      assert.ok(performance.now() - t0 < 5000);
      assert.equal(code, 1, `psql exit code; stderr: ${stderr}`);
      assert.match(stderr, /canceling statement due to user request/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

// ------------------------------------------------------------------------------------ pgbench

describe("pgbench through the gateway", BLOCK, () => {
  /** pgbench, with its tables initialised directly on the target (pgbench -i -s 1). */
  const pgbenchReady = once(async () => {
    const pgbench = requirePostgresClient("pgbench");
    const init = await run(pgbench, ["-i", "-s", "1", "-q"], { env: libpqEnv(libpq("direct")), timeoutMs: 60_000 });
    assertSuccess(init, "pgbench -i -s 1 (direct)");
    return pgbench;
  });

  function processed(r: { stdout: Buffer }): string | undefined {
    return /number of transactions actually processed: (\d+\/\d+)/.exec(r.stdout.toString())?.[1];
  }

  async function historyRows(): Promise<number> {
    return withPg("direct", async (c) => (await c.query<{ n: number }>("select count(*)::int as n from pgbench_history")).rows[0]!.n);
  }

  for (const mode of ["simple", "extended", "prepared"] as const) {
    it(`runs the TPC-B-like script, -M ${mode}, 2 clients x 200 transactions`, async () => {
      const pgbench = await pgbenchReady();
      const before = await historyRows();
      const r = await run(pgbench, ["-n", "-c", "2", "-j", "1", "-t", "200", "-M", mode], { env: libpqEnv(libpq("gateway")), timeoutMs: 60_000 });
      assertSuccess(r, `pgbench -M ${mode}`);
      assert.equal(processed(r), "400/400", describeRun(r));
      assert.match(r.stdout.toString(), /number of failed transactions: 0 /, describeRun(r));
      assert.equal((await historyRows()) - before, 400, "every transaction's INSERT reached the target");
    });
  }

  it("runs the select-only script (-S -M prepared)", async () => {
    const pgbench = await pgbenchReady();
    const r = await run(pgbench, ["-n", "-S", "-c", "2", "-j", "1", "-t", "200", "-M", "prepared"], { env: libpqEnv(libpq("gateway")), timeoutMs: 60_000 });
    assertSuccess(r, "pgbench -S");
    assert.equal(processed(r), "400/400", describeRun(r));
  });

  it("runs a pipelined extended-protocol batch (\\startpipeline ... \\endpipeline)", async () => {
    const pgbench = await pgbenchReady();
    const script = join(work, "pipeline.sql");
    writeFileSync(
      script,
      [
        "\\set aid random(1, 100000)",
        "\\set delta random(-5000, 5000)",
        "\\startpipeline",
        "BEGIN;",
        "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);",
        "SELECT :aid, md5(:aid::text), repeat('p', 1000);",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (2, 1, :aid, 0 - :delta, CURRENT_TIMESTAMP);",
        "END;",
        "\\endpipeline",
        "",
      ].join("\n"),
    );
    const before = await historyRows();
    for (const mode of ["extended", "prepared"] as const) {
      const r = await run(pgbench, ["-n", "-c", "2", "-j", "1", "-t", "100", "-M", mode, "-f", script], { env: libpqEnv(libpq("gateway")), timeoutMs: 60_000 });
      assertSuccess(r, `pgbench pipeline -M ${mode}`);
      assert.equal(processed(r), "200/200", describeRun(r));
    }
    assert.equal((await historyRows()) - before, 800, "every pipelined INSERT reached the target");
  });
});

// ------------------------------------------------------------------------------------ psycopg2

const PSYCOPG2_SCRIPT = String.raw`
import datetime, decimal, io, json, sys
import psycopg2, psycopg2.extensions

def conv(v):
    if isinstance(v, memoryview): return {"bytea": v.tobytes().hex()}
    if isinstance(v, bytes): return {"bytes": v.hex()}
    if isinstance(v, decimal.Decimal): return {"numeric": str(v)}
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)): return {"time": v.isoformat()}
    if isinstance(v, datetime.timedelta): return {"interval": str(v)}
    if isinstance(v, (list, tuple)): return [conv(x) for x in v]
    if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
    if isinstance(v, float) and v != v: return "NaN"
    if isinstance(v, float) and v in (float("inf"), float("-inf")): return str(v)
    return v

def err(e):
    return {"class": type(e).__name__, "pgcode": e.pgcode, "pgerror": e.pgerror,
            "primary": e.diag.message_primary, "severity": e.diag.severity, "detail": e.diag.message_detail,
            "constraint": e.diag.constraint_name}

out = {}
conn = psycopg2.connect("")
ssl_in_use = conn.info.ssl_in_use
out["server_version"] = conn.server_version
out["parameter_status"] = {k: conn.get_parameter_status(k) for k in [
    "server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone", "integer_datetimes",
    "standard_conforming_strings", "is_superuser", "session_authorization", "IntervalStyle", "application_name"]}
cur = conn.cursor()
cur.execute("select current_user, current_database()")
out["who"] = cur.fetchone()
# Row 2 holds values Python's datetime cannot represent (4713 BC, infinity): it comes as text.
cur.execute("select * from fixture where id <> 2 order by id")
out["fixture"] = {"cols": [[d.name, d.type_code, d.internal_size] for d in cur.description], "rows": conv(cur.fetchall())}
cur.execute("select f::text from fixture f where id = 2")
out["fixture_row_2"] = cur.fetchall()
cur.execute("select null::int as n, %s::int as n2, %s::int8, %s::numeric, %s::bool, %s::bytea, %s::text, %s::jsonb, %s::int[], %s::bytea is null",
            (None, 9223372036854775807, decimal.Decimal("-1.5e-20"), True, psycopg2.Binary(bytes(range(256))),
             "Grüße ✓ 日本語 😀 'q' \"d\" \\", json.dumps({"a": [1, None, "ü"]}), [1, None, 3], None))
out["params"] = conv(cur.fetchone())
conn.commit()

# A server-side (named) cursor: DECLARE ... then FETCH in batches of itersize.
with conn.cursor(name="srv_cursor") as nc:
    nc.itersize = 333
    nc.execute("select g, md5(g::text) from generate_series(1, 2000) g")
    rows = list(nc)
    out["named_cursor"] = {"count": len(rows), "first": rows[0], "last": rows[-1], "sum": sum(r[0] for r in rows)}
conn.commit()
with conn.cursor(name="srv_cursor_2", scrollable=True) as nc:
    nc.execute("select f::text from fixture f order by id")
    a = nc.fetchmany(2)
    nc.scroll(0, mode="absolute")
    b = nc.fetchall()
    out["scroll_cursor"] = conv([a, b])
conn.commit()

# COPY with copy_expert, both directions.
cur.execute("create temp table cp (id int, name text, data bytea)")
data = "".join(f"{i}\tname {i} ✓\t\\\\x{i:04x}\n" for i in range(1, 5001)) + "5001\t\\N\t\\N\n"
cur.copy_expert("COPY cp FROM STDIN", io.StringIO(data))
out["copy_in_rowcount"] = cur.rowcount
buf = io.StringIO()
cur.copy_expert("COPY (select * from cp order by id) TO STDOUT", buf)
out["copy_round_trip"] = buf.getvalue() == data
buf = io.StringIO()
cur.copy_expert("COPY (select * from cp where id % 500 = 1 or name is null order by id) TO STDOUT WITH (FORMAT csv, HEADER)", buf)
out["copy_csv"] = buf.getvalue()
conn.commit()

# Errors mid-transaction, then a usable session.
errors = []
for stmt in ["select 1/0", "select 1"]:
    try:
        cur.execute(stmt)
    except psycopg2.Error as e:
        errors.append(err(e))
conn.rollback()
cur.execute("create temp table uq (id int primary key)")
cur.execute("insert into uq values (1)")
try:
    cur.execute("insert into uq values (%s)", (1,))
except psycopg2.Error as e:
    errors.append(err(e))
conn.rollback()
cur.execute("select 'usable after rollback'")
errors.append(cur.fetchone())
out["errors"] = errors

# Notices.
del conn.notices[:]
cur.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
cur.execute("DO $$ BEGIN RAISE WARNING 'careful ✓'; END $$")
out["notices"] = list(conn.notices)
conn.commit()

cur.execute("select g from generate_series(1, 10000) g")
out["fetchmany"] = [len(cur.fetchmany(1234)), len(cur.fetchall())]
conn.commit()
conn.autocommit = True
cur.execute("select repeat('x', 10*1024*1024)")
big = cur.fetchone()[0]
out["big"] = [len(big), big == "x" * (10 * 1024 * 1024)]
# One backend pid: libpq's (BackendKeyData), pg_backend_pid()'s and the pid of our own notifications.
cur.execute("select pg_backend_pid()")
out["backend_pid_agrees"] = cur.fetchone()[0] == conn.get_backend_pid()
cur.execute("listen pid_channel")
cur.execute("notify pid_channel, 'mine'")
conn.poll()
out["own_notifications"] = [[n.channel, n.payload, n.pid == conn.get_backend_pid()] for n in conn.notifies]
cur.close()
conn.close()
sys.stdout.write(json.dumps({"ssl_in_use": ssl_in_use, "result": out}, sort_keys=True, ensure_ascii=False, default=repr))
`;

describe("psycopg2 through the gateway", BLOCK, () => {
  /** The check script, once psycopg2 is known to be importable by the system Python. */
  const scriptReady = once(() => {
    requirePsycopg2();
    const script = join(work, "psycopg2_check.py");
    writeFileSync(script, PSYCOPG2_SCRIPT);
    return script;
  });

  async function runPython(t: LibpqTarget): Promise<{ ssl_in_use: boolean; result: Record<string, unknown> }> {
    const r = await run(SYSTEM_PYTHON, [await scriptReady()], { env: pythonEnv(libpqEnv(t)), timeoutMs: 60_000 });
    assertSuccess(r, `psycopg2 script (${t.host}:${t.port}, sslmode=${t.sslmode})`);
    try {
      return JSON.parse(r.stdout.toString("utf8"));
    } catch (err) {
      throw new Error(`psycopg2 script printed no JSON: ${(err as Error).message}\n${describeRun(r)}`);
    }
  }

  it("gets the same results as a direct connection (NULL, bytea, named cursor, copy_expert, errors, notices)", async () => {
    const direct = await runPython(libpq("direct"));
    const viaTls = await runPython(libpq("gateway", "prefer"));
    const viaPlain = await runPython(libpq("gateway", "disable"));
    assert.equal(direct.ssl_in_use, false);
    assert.equal(viaTls.ssl_in_use, true, "sslmode=prefer to the gateway should negotiate TLS");
    assert.equal(viaPlain.ssl_in_use, false);
    assert.deepStrictEqual(viaTls.result, direct.result);
    assert.deepStrictEqual(viaPlain.result, direct.result);
    const res = direct.result as Record<string, unknown>;
    assert.deepEqual(res.who, ["app_user", "app"]);
    assert.equal(res.copy_in_rowcount, 5001);
    assert.equal(res.copy_round_trip, true);
    assert.deepEqual((res.named_cursor as { count: number }).count, 2000);
    assert.deepEqual(res.big, [TEN_MB, true]);
    const errors = res.errors as ({ pgcode: string } | string[])[];
    assert.deepEqual(errors.slice(0, 3).map((e) => (e as { pgcode: string }).pgcode), ["22012", "25P02", "23505"]);
    assert.deepEqual(res.notices, ["NOTICE:  hello 42\n", "WARNING:  careful ✓\n"]);
    assert.equal(res.backend_pid_agrees, true);
    assert.deepEqual(res.own_notifications, [["pid_channel", "mine", true]]);
  });
});
