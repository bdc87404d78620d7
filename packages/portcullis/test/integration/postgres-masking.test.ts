/**
 * Masking end to end: a real PostgreSQL seeded with fake customers; whatever the query, none of
 * the seeded sensitive values reaches the client. Every byte the client receives is recorded by a
 * tap and searched for every seeded value.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import postgres from "postgres";
import { connectDirect, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { rawLogin, typed } from "../support/raw-pg.js";
import { type Tap, startTap } from "../support/tap.js";

const PEOPLE = [
  { name: "Quentin Marbleworth", email: "quentin.marbleworth@example.com", ssn: "123-45-6789", card: "4111 1111 1111 1111", phone: "+1 415 555 0132", iban: "DE89370400440532013000" },
  { name: "Rosalind Featherby", email: "r.featherby@example.org", ssn: "234-56-7890", card: "5555-5555-5555-4444", phone: "+44 20 7946 0958", iban: "GB82WEST12345698765432" },
  { name: "Theodora Quillsby", email: "theo.quillsby@mail.example.net", ssn: "345-67-8901", card: "378282246310005", phone: "(212) 555-0147", iban: "FR1420041010050500013M02606" },
];
const SENSITIVE = PEOPLE.flatMap((p) => [p.name, p.email, p.ssn, p.card, p.phone, p.iban]);

const MASKING = [
  { connections: ["app"], columns: ["customers.name", "customers.email", "customers.ssn", "payments.card_number"], strategy: "redact" },
  { detectors: ["email", "credit_card", "us_ssn", "iban", "phone"], strategy: "redact" },
];

describe("masking through the gateway", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let tap: Tap;
  let direct: pg.Client;

  before(async () => {
    target = await startTarget();
    direct = await connectDirect(target);
    await direct.query(`
      create table customers (id int primary key, name text, email text, ssn text, phone text, iban text, city text, note text, profile jsonb);
      create table payments (id int primary key, customer_id int, amount numeric(10,2), card_number text);
      create view customer_contacts as select id, name as full_name, lower(email) as mail, city from customers;
      create view contact_cities as select full_name || ' in ' || city as label, id from customer_contacts;
      create function shout(i int) returns void language plpgsql as $$
        declare e text; begin select email into e from customers where id = i; raise notice 'customer %', e; end $$;
    `);
    for (const [i, p] of PEOPLE.entries()) {
      await direct.query("insert into customers values ($1,$2,$3,$4,$5,$6,$7,$8,$9)", [
        i + 1, p.name, p.email, p.ssn, p.phone, p.iban, ["Lisbon", "Oslo", "Quito"][i],
        `called on ${p.phone}, mail ${p.email}, card ${p.card}`, JSON.stringify({ contact: { email: p.email }, tier: "gold" }),
      ]);
      await direct.query("insert into payments values ($1,$2,$3,$4)", [i + 1, i + 1, 10.5 * (i + 1), p.card]);
    }
    gw = await startTestGateway({ target, overrides: { masking: MASKING } });
    tap = await startTap(gw.host, gw.port);
  });
  after(async () => {
    await direct?.end();
    await tap?.close();
    await gw?.stop();
    await target?.stop();
  });

  const viaTap = async () => {
    const c = new pg.Client({ ...gw.clientConfig(await gw.token()), port: tap.port });
    await c.connect();
    return c;
  };

  /** Nothing seeded may appear in anything the client received so far. */
  const assertNoLeak = (what: string) => {
    const seen = tap.toClient().toString("utf8");
    for (const v of SENSITIVE) {
      const at = seen.indexOf(v);
      assert.ok(at < 0, `${what}: "${v.slice(0, 3)}…" reached the client${process.env.DEBUG_LEAKS ? ` in ${JSON.stringify(seen.slice(Math.max(0, at - 80), at + 40))}` : ""}`);
    }
  };

  const QUERIES = [
    "select * from customers",
    "select name, email as e, ssn as s, note from customers",
    "select lower(email), upper(name), concat(name, '!'), name || ' <' || email || '>', format('%s/%s', ssn, email) from customers",
    "select to_jsonb(c) from customers c",
    "select row_to_json(c) from customers c",
    "select json_agg(c) from customers c",
    "select string_agg(email, ',') from customers",
    "select email::varchar(200)::text as e, ssn::bytea::text as raw from customers",
    "select (select email from customers c2 where c2.id = c.id) as sub from customers c",
    "with x as (select email as m, name from customers) select upper(m) as mm, name from x",
    "select * from (select email, id from customers) s where id > 0",
    "select * from customer_contacts",
    "select * from contact_cities",
    "select c.*, p.card_number, p.amount from customers c join payments p on p.customer_id = c.id",
    "select case when id > 1 then email else ssn end as either from customers",
    "select profile, profile->'contact'->>'email' as pe from customers",
    "select count(*), max(email), min(ssn) from customers",
    "select email from customers union all select card_number from payments",
    // Derived relations: unnamed outputs, alias column lists, VALUES, LATERAL, CTE column lists.
    // (Names, not emails: a name is caught by lineage alone, no detector would save it.)
    "select btrim from (select btrim(name) from customers) t",
    "select x from (select btrim(name) from customers) t(x)",
    "with x(e) as (select btrim(name) from customers) select e from x",
    "with x as (select btrim(name) as e from customers) select * from (select e from x) s",
    "select v.e from (values ((select btrim(name) from customers limit 1))) v(e)",
    "select l.x from customers c, lateral (select btrim(c.name) as y) l(x)",
    "select e from (select btrim(name) from customers union all select 'x') s(e)",
    "select array_agg(e) from (select btrim(name) from customers) s(e)",
    // Functions that read a table named in a string.
    "select table_to_xml('customers', true, false, '')",
  ];

  it("masks every seeded value over the simple protocol", async () => {
    const c = await viaTap();
    for (const q of QUERIES) await c.query(q);
    await c.end();
    assertNoLeak("simple protocol");
  });

  it("masks every seeded value over the extended protocol, text and binary results", async () => {
    const c = await viaTap();
    for (const q of QUERIES) {
      await c.query({ text: q, values: [] });
      await c.query({ text: q, values: [], binary: true } as pg.QueryConfig);
    }
    await c.end();
    assertNoLeak("extended protocol");
  });

  it("masks with postgres.js (prepared statements, described once, executed again)", async () => {
    const sql = postgres({ ...gw.clientConfig(await gw.token()), port: tap.port, username: "agent", max: 1, onnotice: () => {} });
    try {
      for (const q of QUERIES.slice(0, 6)) {
        await sql.unsafe(q, [], { prepare: true });
        await sql.unsafe(q, [], { prepare: true });
      }
      await sql`select email, ssn from customers where id = ${1}`;
    } finally {
      await sql.end();
    }
    assertNoLeak("postgres.js");
  });

  it("masks COPY output, cursors, errors that echo values and notices", async () => {
    const c = await viaTap();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(n.message ?? ""));
    await c.query("begin");
    await c.query("declare cur cursor for select name, email, note from customers");
    await c.query("fetch all from cur");
    await c.query("commit");
    await c.query("select email::int from customers").catch(() => {});
    await c.query("select name::regclass from customers").catch(() => {});
    // An echoed value that happens to contain the gateway's name gets no special treatment.
    await c.query("select (name || ' portcullis')::int from customers").catch(() => {});
    await c.query("listen ch");
    await c.query("insert into customers (id, email) values (1, 'x')").catch(() => {});
    await c.query("select shout(1)");
    await c.query("select pg_notify('ch', (select email from customers where id = 2))").catch(() => {});
    await c.query("select pg_notify('ch', (select name from customers where id = 3))").catch(() => {});
    // A redefined view is judged by its new definition, not a cached one.
    await c.query("create view v_redefined as select 'harmless'::text as e");
    await c.query("select e from v_redefined");
    await c.query("create or replace view v_redefined as select btrim(name) as e from customers");
    await c.query("select e from v_redefined");
    await c.end();
    assert.ok(notices.length > 0 && notices.every((n) => !n.includes("@")), JSON.stringify(notices));
    // COPY through psql-free path: postgres.js readable
    const sql = postgres({ ...gw.clientConfig(await gw.token()), port: tap.port, username: "agent", max: 1 });
    try {
      for (const q of [
        "copy (select * from customers) to stdout", "copy customers to stdout with (format csv)", "copy payments (card_number, id) to stdout",
        "copy customers to stdout (format csv, delimiter '|')", "copy customers to stdout with delimiter ','", "copy (select id, name from customers) to stdout (delimiter '|')",
      ]) {
        const stream = await sql.unsafe(q).readable();
        await new Promise<void>((resolve, reject) => { stream.on("data", () => {}); stream.on("end", resolve); stream.on("error", reject); });
      }
    } finally {
      await sql.end();
    }
    assertNoLeak("copy, cursors, errors, notices");
  });

  it("masks reported settings (ParameterStatus) by detectors", async () => {
    const c = await viaTap();
    await c.query(`set application_name = '${PEOPLE[0]!.email}'`);
    await c.query("select 1");
    await c.end();
    assertNoLeak("ParameterStatus");
  });

  it("keeps results paired with their statements when a pipelined error skips part of the pipeline", async () => {
    const { conn } = await rawLogin(tap.port, await gw.token());
    const cstr = (t: string) => Buffer.from(`${t}\0`);
    await conn.write(Buffer.concat([
      typed("P", Buffer.concat([cstr(""), cstr("select * from no_such_table"), Buffer.from([0, 0])])),
      typed("S"),
      typed("Q", cstr("select 'a'; select btrim(name) from customers; select 'b'")),
    ]));
    await conn.readUntil("Z", 5000, false);
    const second = await conn.readUntil("Z", 5000, false);
    assert.ok(second.some((m) => m.type === "D"), "the query's rows arrived");
    conn.end();
    assertNoLeak("pipelined error");
  });

  it("returns unmasked columns and values that match no detector byte-identical to a direct connection", async () => {
    const c = new pg.Client(gw.clientConfig(await gw.token()));
    await c.connect();
    for (const q of ["select id, city, profile->>'tier' as tier from customers order by id", "select id, amount from payments order by id", "select 'hello world' as greeting, 42 as n, now()::date as d"]) {
      const [a, b] = await Promise.all([c.query({ text: q, rowMode: "array" }), direct.query({ text: q, rowMode: "array" })]);
      assert.deepEqual(a.rows, b.rows, q);
    }
    // A cursor returns its query's columns: computed columns with no masked source stay intact.
    for (const client of [c, direct]) {
      await client.query("begin");
      await client.query("declare cc cursor for select id, city || '!' as shout, upper(email) as mail from customers order by id");
    }
    const [viaCursor, directCursor] = await Promise.all([c.query({ text: "fetch 2 from cc", rowMode: "array" }), direct.query({ text: "fetch 2 from cc", rowMode: "array" })]);
    assert.deepEqual(viaCursor.rows.map((r) => r.slice(0, 2)), directCursor.rows.map((r) => r.slice(0, 2)));
    assert.deepEqual(viaCursor.rows.map((r) => r[2]), ["[REDACTED:derived]", "[REDACTED:derived]"]);
    for (const client of [c, direct]) await client.query("commit");
    // So does a statement prepared by SQL and EXECUTEd.
    await c.query("prepare pq as select id, city || '?' as q, lower(email) as le from customers order by id");
    const executed = await c.query({ text: "execute pq", rowMode: "array" });
    assert.deepEqual(executed.rows[0]?.slice(0, 2), [1, "Lisbon?"]);
    assert.equal(executed.rows[0]?.[2], "[REDACTED:derived]");
    const masked = await c.query("select email, name from customers order by id limit 1");
    assert.deepEqual(masked.rows[0], { email: "[REDACTED:customers.email]", name: "[REDACTED:customers.name]" });
    await c.end();
  });

  it("stores and logs no seeded value: the store files and every log line are clean", () => {
    const files = readdirSync(gw.dataDir).filter((f) => f.startsWith("portcullis.db"));
    assert.ok(files.length > 0, "the store exists");
    const stored = files.map((f) => readFileSync(join(gw.dataDir, f)).toString("latin1")).join("\n");
    const logs = gw.logs.join("\n");
    assert.ok(logs.includes("postgres session opened"), "logs were captured");
    for (const v of SENSITIVE) {
      assert.ok(!stored.includes(v), `"${v.slice(0, 3)}…" is in the store`);
      assert.ok(!logs.includes(v), `"${v.slice(0, 3)}…" is in the logs`);
    }
  });
});


describe("the catalog side connection", () => {
  it("does not let one session's lock stall the other sessions' results (lookups time out, the locker's session fails closed)", { timeout: 30_000 }, async () => {
    const target = await startTarget();
    const admin = await connectDirect(target);
    await admin.query("create table people (id int, name text); insert into people values (1, 'Zebulon Q'); create view people_v as select id, name from people; create table other (id int); insert into other values (7)");
    await admin.end();
    const gw = await startTestGateway({ target, overrides: { masking: [{ columns: ["people.name"], strategy: "redact" }] } });
    try {
      const a = new pg.Client(gw.clientConfig(await gw.token("locker")));
      const b = new pg.Client(gw.clientConfig(await gw.token("bystander")));
      a.on("error", () => {});
      await Promise.all([a.connect(), b.connect()]);
      await a.query("begin");
      await a.query("lock table people_v in access exclusive mode");
      const aResult = a.query("select * from people_v").then(() => "answered", (e: Error) => `failed: ${e.message}`);
      const bResult = await b.query("select id from other");
      assert.deepEqual(bResult.rows, [{ id: 7 }], "another session gets its result");
      assert.match(await aResult, /^failed/, "the locking session cannot have its view result masked and fails closed");
      await b.end();
      await a.end().catch(() => {});
    } finally {
      await gw.stop();
      await target.stop();
    }
  });
});

describe("masked columns of non-text types", () => {
  it("become NULL by default, and end the session when the rule says refuse", async () => {
    const target = await startTarget();
    const admin = await connectDirect(target);
    await admin.query("create table accounts (id int, balance numeric, pin int, owner text); insert into accounts values (1, 1234.5, 4321, 'x')");
    await admin.end();
    const gw = await startTestGateway({
      target,
      overrides: {
        masking: [
          { columns: ["accounts.balance"], strategy: "partial" },
          { columns: ["accounts.pin"], strategy: "redact", non_text: "refuse" },
        ],
      },
    });
    try {
      const c = new pg.Client(gw.clientConfig(await gw.token()));
      await c.connect();
      assert.deepEqual((await c.query("select id, balance, owner from accounts")).rows, [{ id: 1, balance: null, owner: "x" }]);
      const err = await c.query("select pin from accounts").then(() => undefined, (e: Error & { code?: string }) => e);
      assert.ok(err, "a refused column ends the query");
      assert.match(err.message, /cannot carry the mask/);
      await c.end().catch(() => {});
    } finally {
      await gw.stop();
      await target.stop();
    }
  });
});
