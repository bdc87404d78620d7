/**
 * Masking property test (issue 13): over a corpus of query shapes covering every laundering route
 * we know of (postgres-masking-property.data.ts), no seeded value of a masked column, and no
 * reversible transform of one, reaches the client in any message: DataRow, CopyData, ErrorResponse,
 * NoticeResponse, NotificationResponse (same session and another listening session), ParameterStatus,
 * or anything else the gateway sends after login.
 *
 * Every shape runs over a raw wire client, in the simple protocol and (most) in the extended one, on
 * the masked connection `app`. A refusal is a pass, provided the refusal itself carries no value. The
 * same corpus on `plain` (same target, no masking rule) is the control: there the checker must find
 * the values, in every message type and every transform, so it is known to be live.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { connectDirect, UPSTREAM_PASSWORD, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { type PgMessage, type RawPg, queryMessage, rawLogin, typed } from "../support/raw-pg.js";
import { SHAPES, type Shape } from "./postgres-masking-property.data.js";

/** Seeded values of the masked columns: random-looking, so no window of one occurs in ordinary text. */
const SECRETS = ["qz7Vw-K3pLx-91mT", "Hj4nR-Zq8Wd-27cF", "Ux2bM-Nc9Tk-45yP"];
const EMAILS = ["kx9.vrumbelt@qzmail.test", "pd4.ygwornic@vbhost.test", "tj6.fobzquel@wnplace.test"];
const SEEDS = [...SECRETS, ...EMAILS];

const MASKING = [{ connections: ["app"], columns: ["customers.secret", "customers.email"], strategy: "redact" }];

// --- The forbidden forms -----------------------------------------------------------------------

const reverse = (s: string) => [...s].reverse().join("");
const rotate = (s: string, n: number) => s.replace(/[a-z]/gi, (c) => {
  const base = c <= "Z" ? 65 : 97;
  return String.fromCharCode(((c.charCodeAt(0) - base + n) % 26) + base);
});
/** Each character's code moved by one (chr(ascii(c) + 1)). */
const shiftCodes = (s: string) => [...s].map((c) => String.fromCharCode(c.charCodeAt(0) + 1)).join("");
const alnum = (s: string) => s.replace(/[^0-9a-z]/gi, "");
const bits = (s: string) => [...Buffer.from(s)].map((b) => b.toString(2).padStart(8, "0")).join("");

/** Reversible transforms, each compared case-insensitively (upper/lower are covered by that). */
const TRANSFORMS: Array<[string, (s: string) => string]> = [
  ["clear", (s) => s], ["reversed", reverse], ["rot13", (s) => rotate(s, 13)], ["caesar+1", (s) => rotate(s, 1)],
  ["codes+1", shiftCodes], ["reversed rot13", (s) => reverse(rotate(s, 13))],
];
/** Encodings: the encoded form depends on where the value starts, so each offset is encoded too. */
const ENCODINGS: Array<[string, (s: string) => string, number]> = [
  ["base64", (s) => Buffer.from(s).toString("base64"), 8],
  ["hex", (s) => Buffer.from(s).toString("hex"), 12],
  ["bits", bits, 48],
];

interface Forbidden { window: string; label: string }

function windows(text: string, n: number, label: string): Forbidden[] {
  const t = text.toLowerCase();
  return Array.from({ length: Math.max(0, t.length - n + 1) }, (_, i) => ({ window: t.slice(i, i + n), label }));
}

function forbiddenForms(seed: string, n: number): { direct: Forbidden[]; spread: Forbidden[] } {
  const direct = TRANSFORMS.flatMap(([name, f]) => windows(f(seed), 6, `${n}:${name}`));
  for (const [name, f, width] of ENCODINGS) {
    for (let off = 0; off < 3; off++) direct.push(...windows(f(seed.slice(off)), width, `${n}:${name}`));
  }
  // A value taken apart (one character per row, spaces between characters) is compared without its separators.
  const spread = TRANSFORMS.flatMap(([name, f]) => windows(alnum(f(seed)), 8, `${n}:${name} (spread)`));
  return { direct, spread };
}

const FORMS = SEEDS.map((s, i) => forbiddenForms(s, i));
const DIRECT = FORMS.flatMap((f) => f.direct);
const SPREAD = FORMS.flatMap((f) => f.spread);

interface Leak { type: string; label: string }

const MESSAGE_NAMES: Record<string, string> = {
  D: "DataRow", d: "CopyData", E: "ErrorResponse", N: "NoticeResponse", A: "NotificationResponse", S: "ParameterStatus",
  T: "RowDescription", C: "CommandComplete",
};

/**
 * Every forbidden form found in what a shape received: windows of a value or a transform in any one
 * message; the value spread over messages (all message text with separators dropped, in order); and
 * the value as character codes, one number per row or per error (every number 32..126, in order).
 */
function leaksIn(messages: PgMessage[]): Leak[] {
  const found = new Map<string, Leak>();
  const add = (type: string, label: string) => found.set(`${type}|${label}`, { type, label });
  for (const m of messages) {
    const text = m.body.toString("latin1").toLowerCase();
    for (const f of DIRECT) if (text.includes(f.window)) add(MESSAGE_NAMES[m.type] ?? m.type, f.label);
  }
  const types = [...new Set(messages.map((m) => MESSAGE_NAMES[m.type] ?? m.type))].join("+");
  const joined = messages.map((m) => alnum(m.body.toString("latin1")).toLowerCase()).join("");
  for (const f of SPREAD) if (joined.includes(f.window)) add(types, f.label);
  const codes = messages.flatMap((m) => m.body.toString("latin1").match(/\d+/g) ?? []).map(Number).filter((c) => c >= 32 && c <= 126);
  const decoded = String.fromCharCode(...codes).toLowerCase();
  for (const f of DIRECT) if (decoded.includes(f.window)) add(`${types} (character codes)`, f.label);
  return [...found.values()];
}

// --- The wire ------------------------------------------------------------------------------------

const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");
const int16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

/** Parse/Bind/Describe/Execute/Sync of one statement, unnamed; results in text or binary. */
function extendedMessages(sql: string, binary: boolean): Buffer {
  return Buffer.concat([
    typed("P", Buffer.concat([cstr(""), cstr(sql), int16(0)])),
    typed("B", Buffer.concat([cstr(""), cstr(""), int16(0), int16(0), int16(1), int16(binary ? 1 : 0)])),
    typed("D", Buffer.concat([Buffer.from("P"), cstr("")])),
    typed("E", Buffer.concat([cstr(""), int32(0)])),
    typed("S"),
  ]);
}

/**
 * Reads to ReadyForQuery; a COPY FROM STDIN is given one row of the agent's own. In copy-in mode the
 * server ignores a Sync, so an extended-protocol COPY needs one more after CopyDone.
 */
async function readAnswer(conn: RawPg, extended = false): Promise<PgMessage[]> {
  const out: PgMessage[] = [];
  for (;;) {
    const m = await conn.readMessage(20_000);
    out.push(m);
    if (m.type === "G") await conn.write(Buffer.concat([typed("d", "agent row\n"), typed("c"), ...(extended ? [typed("S")] : [])]));
    if (m.type === "Z") return out;
  }
}

type Protocol = "simple" | "extended" | "extended-binary";

interface ShapeRun {
  messages: PgMessage[];
  refused: boolean;
}

async function runShape(port: number, token: string, connection: string, shape: Shape, protocol: Protocol, unique: string): Promise<ShapeRun> {
  const { conn } = await rawLogin(port, token, connection);
  try {
    await conn.write(queryMessage("listen leak"));
    await readAnswer(conn);
    const messages: PgMessage[] = [];
    for (const step of shape.steps) {
      const sql = step.replaceAll("{u}", unique);
      await conn.write(protocol === "simple" ? queryMessage(sql) : extendedMessages(sql, protocol === "extended-binary"));
      messages.push(...await readAnswer(conn, protocol !== "simple"));
    }
    const refused = messages.some((m) => m.type === "E" && m.body.includes("masked-data-store"));
    return { messages, refused };
  } finally {
    conn.end();
  }
}

// --- The test ------------------------------------------------------------------------------------

describe("masking property: no seeded value or reversible transform of one reaches the client", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let direct: pg.Client;

  before(async () => {
    target = await startTarget();
    direct = await connectDirect(target);
    await direct.query(`
      create table customers (id int primary key, secret text, email text, name text, note text);
      create table sink (v text);
      create view cust_view as select id, secret as s, name from customers;
      create function ident(t text) returns text language sql immutable as 'select t';
      create function shout(t text, code text) returns int language plpgsql as $$
        begin raise exception using errcode = code, message = t, detail = t, hint = t; end $$;
      create function whisper(t text) returns int language plpgsql as $$
        begin raise notice '%', t; raise warning 'w %', t; return 1; end $$;
      create function run_text(t text) returns int language plpgsql as $$ begin execute t; return 1; end $$;
    `);
    for (let i = 0; i < SECRETS.length; i++) {
      await direct.query("insert into customers values ($1, $2, $3, $4, $5)", [i + 1, SECRETS[i], EMAILS[i], `name ${i + 1}`, `note ${i + 1}`]);
    }
    await direct.query("analyze customers");
    const { pg: t } = target;
    const connection = (name: string) => ({
      name, type: "postgres", target: { host: t.host, port: t.port, database: "app", tls: "disable" },
      credentials: { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD }, access: ["agents"],
    });
    gw = await startTestGateway({ target, connections: [connection("app"), connection("plain")], overrides: { masking: MASKING } });
  });
  after(async () => {
    await direct?.end();
    await gw?.stop();
    await target?.stop();
  });

  /** Puts back what a shape may have stored on the target (on `plain` stores are not refused). */
  const cleanUp = async () => {
    await direct.query("delete from sink; select lo_unlink(oid) from pg_largeobject_metadata");
  };

  /**
   * Runs the corpus on a connection and returns, per shape and protocol, the leaks found in its own
   * session and in a second session listening on the same channel.
   */
  const runCorpus = async (connection: string, protocols: (shape: Shape, i: number) => Protocol[]) => {
    const token = await gw.token();
    const listener = await rawLogin(gw.port, token, connection);
    await listener.conn.write(queryMessage("listen leak"));
    await readAnswer(listener.conn);
    const results: Array<{ shape: number; protocol: Protocol; refused: boolean; leaks: Leak[] }> = [];
    try {
      for (const [i, shape] of SHAPES.entries()) {
        for (const protocol of protocols(shape, i)) {
          const run = await runShape(gw.port, token, connection, shape, protocol, `${connection}_${i}_${protocol.replace("-", "_")}`)
            .catch((err: Error) => { throw new Error(`shape #${i} (${protocol}) ${shape.steps.join("; ").slice(0, 200)}: ${err.message}`); });
          // A round trip brings the listener every notification committed so far.
          await listener.conn.write(queryMessage("select 1"));
          const heard = (await readAnswer(listener.conn)).filter((m) => m.type === "A");
          const leaks = [...leaksIn(run.messages), ...leaksIn(heard).map((l) => ({ ...l, type: `${l.type} (other session)` }))];
          results.push({ shape: i, protocol, refused: run.refused, leaks });
          await cleanUp();
        }
      }
    } finally {
      listener.conn.end();
    }
    return results;
  };

  it("finds the seeded values on a connection without masking rules (the checker is live)", { timeout: 300_000 }, async () => {
    const results = await runCorpus("plain", () => ["simple"]);
    const leaks = results.flatMap((r) => r.leaks);
    const leaking = results.filter((r) => r.leaks.length > 0).length;
    console.log(`control (no masking): ${leaking} of ${results.length} shapes leak`);
    assert.ok(leaking >= SHAPES.length / 2, `only ${leaking} of ${SHAPES.length} shapes leak without masking`);
    for (const type of ["DataRow", "CopyData", "ErrorResponse", "NoticeResponse", "NotificationResponse", "ParameterStatus"]) {
      assert.ok(leaks.some((l) => l.type.split(/[+ ]/).includes(type)), `no leak seen in a ${type}`);
    }
    assert.ok(leaks.some((l) => l.type.includes("(other session)")), "no leak seen by the other listening session");
    assert.ok(leaks.some((l) => l.type.includes("(character codes)")), "no leak seen as character codes");
    const labels = leaks.map((l) => l.label.slice(l.label.indexOf(":") + 1));
    for (const form of ["clear", "reversed", "rot13", "codes+1", "base64", "hex", "bits", "clear (spread)", "codes+1 (spread)"]) {
      assert.ok(labels.includes(form), `no leak seen in the form ${form}`);
    }
  });

  it(`masks or refuses every one of the ${SHAPES.length} shapes, over the simple and the extended protocol`, { timeout: 600_000 }, async () => {
    const results = await runCorpus("app", (shape, i) => (shape.extended === false ? ["simple"] : ["simple", i % 2 === 0 ? "extended" : "extended-binary"]));
    const refused = results.filter((r) => r.refused).length;
    console.log(`masked connection: ${results.length} runs of ${SHAPES.length} shapes; ${refused} refused (masked-data-store), ${results.length - refused} answered`);
    const leaking = results.filter((r) => r.leaks.length > 0);
    const report = leaking.map((r) => `#${r.shape} ${r.protocol} [${SHAPES[r.shape]!.route}] ${SHAPES[r.shape]!.steps.join("; ").slice(0, 160)} -> ${r.leaks.map((l) => `${l.type}:${l.label}`).join(", ")}`);
    assert.equal(leaking.length, 0, `${leaking.length} runs leaked:\n${report.join("\n")}`);
    assert.ok(results.length >= 2 * 100, "the corpus ran");
  });
});
