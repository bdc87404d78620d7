/**
 * COPY text/CSV is split exactly as PostgreSQL writes it (issue 13, class 4). Property test with
 * PostgreSQL as the oracle: random tables of values full of delimiters, quotes, escape characters,
 * backslashes, \N, \., CR/LF, tabs, control characters, Unicode, empty strings, NULLs and the NULL
 * string itself, under random FORMAT, DELIMITER, QUOTE, ESCAPE, NULL, HEADER, FORCE_QUOTE and
 * ENCODING options, spelled in the option-list or the legacy syntax. For each case:
 * - copyFormatOf reads the options PostgreSQL used;
 * - every line PostgreSQL sends splits into the values a SELECT returns (the header into the names);
 * - joining the values gives back PostgreSQL's line (byte for byte; with FORCE_QUOTE, through the
 *   kept field texts), and replacing one field keeps every other field's bytes;
 * - PostgreSQL's COPY FROM reads the joined and the replaced lines back to the same values.
 * A NULL string a value can be written as (text format) is reported unreadable, and PostgreSQL is
 * shown to write that value and NULL alike. Then, through the gateway with a masked column, random
 * COPY options return every other field exactly as direct, and the masked values never in clear.
 * The seed is COPY_SEED (default fixed); every failure message names the seed and the case.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { loadSqlParser } from "../../src/policy/sql/classify.js";
import { copyFormatOf } from "../../src/protocols/postgres/copy-format.js";
import { type CopyFormat, DEFAULT_TEXT, joinCopyLine, nullIsAmbiguous, readCopyLine, splitCopyLine } from "../../src/protocols/postgres/copy-text.js";
import { connectDirect, UPSTREAM_USER, startTarget, startTestGateway, type TestGateway, type TestTarget } from "../support/gateway.js";
import { prng } from "../support/prng.js";
import { type PgMessage, RawPg, errorFields, rawLogin, startupPacket, typed } from "../support/raw-pg.js";

const SEED = Number(process.env.COPY_SEED ?? 20240613);
const CASES = 300;
const GATEWAY_CASES = 60;

type Value = string | null;

/** One random COPY: its options as generated (the truth copyFormatOf must find). */
interface Options {
  csv: boolean;
  delimiter: string;
  quote: string;
  escape: string;
  null: string;
  header: boolean;
  /** FORCE_QUOTE: all columns, some (by index), or none. */
  forceQuote: "*" | number[] | undefined;
  encoding: string | undefined;
  legacy: boolean;
  /** Which spelling each option takes (explicit default, HEADER variants). */
  spell: () => number;
}

// ---------------------------------------------------------------------------------------------
// SQL text for the options

const literal = (s: string): string =>
  `E'${[...s].map((c) => (c === "\\" ? "\\\\" : c === "'" ? "\\'" : c.charCodeAt(0) < 0x20 || c === "\x7f" ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : c)).join("")}'`;
const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** The WITH clause, in the option-list syntax or the legacy one; `from` leaves out COPY TO-only options. */
function withClause(o: Options, names: string[], from = false): string {
  const forced = o.forceQuote === "*" ? "*" : o.forceQuote?.map((i) => ident(names[i]!));
  const items: string[] = [];
  if (o.legacy) {
    items.push(`delimiter as ${literal(o.delimiter)}`, `null ${o.spell() ? "as " : ""}${literal(o.null)}`);
    if (o.header) items.push("header");
    if (o.csv) {
      items.push("csv");
      items.push(`quote as ${literal(o.quote)}`);
      if (o.escape !== o.quote || o.spell()) items.push(`escape ${literal(o.escape)}`);
      if (forced && !from) items.push(`force quote ${Array.isArray(forced) ? forced.join(", ") : forced}`);
    }
    if (o.encoding) items.push(`encoding ${literal(o.encoding)}`);
    return `with ${items.join(" ")}`;
  }
  if (o.csv || o.spell()) items.push(`format ${o.csv ? "csv" : "text"}`);
  if (o.delimiter !== (o.csv ? "," : "\t") || o.spell()) items.push(`delimiter ${literal(o.delimiter)}`);
  if (o.null !== (o.csv ? "" : "\\N") || o.spell()) items.push(`null ${literal(o.null)}`);
  if (o.csv) {
    if (o.quote !== '"' || o.spell()) items.push(`quote ${literal(o.quote)}`);
    if (o.escape !== o.quote || o.spell()) items.push(`escape ${literal(o.escape)}`);
    if (forced && !from) items.push(`force_quote ${Array.isArray(forced) ? `(${forced.join(", ")})` : forced}`);
  }
  const headers = o.header ? ["header", "header true", "header on", "header 1"] : ["header false", "header off", "header 0"];
  if (o.header || o.spell()) items.push(headers[o.spell() % headers.length]!);
  if (o.encoding) items.push(`encoding ${literal(o.encoding)}`);
  return items.length > 0 ? `with (${items.join(", ")})` : "";
}

// ---------------------------------------------------------------------------------------------
// Random options and values

/** Each case draws from its own generator, so one can be replayed alone and a failure changes no other. */
const caseRandom = (n: number): (() => number) => prng((SEED ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Text delimiters PostgreSQL accepts (not a backslash, '.', lowercase letter or digit). */
const TEXT_DELIMITERS = ["\t", ",", "|", ";", " ", ":", "!", "X", "N", "\x01", "~", '"', "'", "%"];
const CSV_DELIMITERS = [",", "\t", "|", ";", "\\", "a", ".", " ", "'", "\x01", "#", "N"];
const QUOTES = ['"', "'", "\\", "|", "q", "$", "`", ","];
const ESCAPES = ['"', "\\", "'", "!", "q", ",", "|"];
/** Text NULL strings: some no value prints as, and some a value does (then unreadable). */
const TEXT_NULLS = ["\\N", "\\N", "\\x", "\\.", "\\", "\\Q", "\\0", "", "NULL", "x", "\\n", "\\\\N", "nil"];
const CSV_NULLS = ["", "", "NULL", "\\N", "x", " ", "N/A", "\\"];

function randomOptions(r: () => number, columns: number): Options {
  const csv = r() < 0.55;
  const delimiter = pick(r, csv ? CSV_DELIMITERS : TEXT_DELIMITERS);
  const quote = csv ? pick(r, QUOTES.filter((q) => q !== delimiter)) : '"';
  const escape = csv && r() < 0.6 ? pick(r, ESCAPES) : quote;
  // PostgreSQL refuses a NULL string holding the delimiter (or, in CSV, the quote).
  const nulls = (csv ? CSV_NULLS : TEXT_NULLS).filter((n) => !n.includes(delimiter) && !(csv && n.includes(quote)));
  const some = [...Array(columns).keys()].filter(() => r() < 0.5);
  const forceQuote = !csv || r() < 0.5 ? undefined : r() < 0.4 || some.length === 0 ? "*" as const : some;
  return {
    csv, delimiter, quote, escape, null: pick(r, nulls), header: r() < 0.35, forceQuote,
    encoding: r() < 0.15 ? pick(r, ["UTF8", "utf-8", "SQL_ASCII", "unicode"]) : undefined,
    legacy: r() < 0.3, spell: () => Math.floor(r() * 4),
  };
}

/** Characters and strings that break splitters. */
function nastyPieces(o: Options): string[] {
  return [
    o.delimiter, o.quote, o.escape, o.null, "\\", "\\N", "\\.", "\n", "\r", "\r\n", "\t", "\b", "\f", "\v", "\x01", "\x1f", "\x7f",
    " ", "a", "Z", "0", "7", "x41", "\\x41", "\\101", "é", "😀", "\u2028", "\u00a0", "\ufeff", "漢字", '"', "'", ",", "|", ";", "N", "NULL", '""', "\\\\",
  ];
}

function randomValue(r: () => number, o: Options): Value {
  const x = r();
  if (x < 0.1) return null;
  if (x < 0.16) return "";
  if (x < 0.22) return o.null;
  if (x < 0.26) return pick(r, [o.quote, o.escape, o.delimiter, "\\.", "\\"]);
  const pieces = nastyPieces(o);
  let v = "";
  for (let n = 1 + Math.floor(r() * 8); n > 0; n--) v += pick(r, pieces);
  return v;
}

/** Column names (HEADER prints them): distinct, some nasty. */
function randomNames(r: () => number, o: Options, n: number): string[] {
  return [...Array(n).keys()].map((i) => `${i}${r() < 0.5 ? "" : [...(randomValue(r, o) ?? "")].slice(0, 10).join("")}`);
}

// ---------------------------------------------------------------------------------------------
// The wire: COPY out and in over a raw connection (every CopyData message seen as sent)

interface CopyResult { lines: string[]; bytes: Buffer[]; error?: string }

/** A simple-protocol COPY TO STDOUT: its rows as sent, one CopyData each. */
async function copyOut(conn: RawPg, sql: string): Promise<CopyResult> {
  await conn.write(typed("Q", `${sql}\0`));
  return copyResult(await conn.readUntil("Z", 30_000, false));
}

/** The same COPY through Parse, Bind and Execute (unnamed statement and portal). */
async function extendedCopyOut(conn: RawPg, sql: string): Promise<CopyResult> {
  const none = Buffer.from([0, 0]);
  await conn.write(Buffer.concat([
    typed("P", Buffer.concat([Buffer.from(`\0${sql}\0`), none])),
    typed("B", Buffer.concat([Buffer.from("\0\0"), none, none, none])),
    typed("E", Buffer.from([0, 0, 0, 0, 0])),
    typed("S"),
  ]));
  return copyResult(await conn.readUntil("Z", 30_000, false));
}

/** What a COPY sends up to ReadyForQuery, or up to the end of a session it made the gateway end. */
async function copyOutOrEnd(conn: RawPg, sql: string): Promise<CopyResult> {
  await conn.write(typed("Q", `${sql}\0`));
  const messages: PgMessage[] = [];
  for (;;) {
    const m = await conn.readMessage(30_000).catch((err: Error) => {
      if (/connection closed/.test(err.message)) return undefined;
      throw err;
    });
    if (!m) return copyResult(messages);
    messages.push(m);
    if (m.type === "Z") return copyResult(messages);
  }
}

function copyResult(messages: PgMessage[]): CopyResult {
  const err = messages.find((m) => m.type === "E");
  const data = messages.filter((m) => m.type === "d").map((m) => m.body);
  for (const b of data) assert.equal(b[b.length - 1], 0x0a, "every CopyData row ends with a newline");
  return { lines: data.map((b) => b.toString("utf8", 0, b.length - 1)), bytes: data, ...(err ? { error: JSON.stringify(errorFields(err.body)) } : {}) };
}

async function copyIn(conn: RawPg, sql: string, lines: string[]): Promise<string | undefined> {
  await conn.write(typed("Q", `${sql}\0`));
  const first = await conn.readUntil("G", 30_000);
  const err = first.find((m) => m.type === "E");
  if (err) { await conn.readUntil("Z", 30_000, false); return JSON.stringify(errorFields(err.body)); }
  await conn.write(Buffer.concat([...lines.map((l) => typed("d", `${l}\n`)), typed("c")]));
  const rest = await conn.readUntil("Z", 30_000, false);
  const e = rest.find((m) => m.type === "E");
  return e ? JSON.stringify(errorFields(e.body)) : undefined;
}

/** A direct session to the target (trust: no password exchange to implement). */
async function directSession(target: TestTarget): Promise<RawPg> {
  const conn = await RawPg.connect(target.pg.port, target.pg.host);
  await conn.write(startupPacket({ user: UPSTREAM_USER, database: "app", client_encoding: "UTF8" }));
  const login = await conn.readUntil("Z", 15_000);
  if (login.some((m) => m.type === "E")) throw new Error("direct login refused");
  return conn;
}

const expectFormat = (o: Options): Omit<CopyFormat, "unreadable"> => ({
  csv: o.csv, delimiter: o.delimiter, quote: o.csv ? o.quote : '"', escape: o.csv ? o.escape : '"', null: o.null, header: o.header,
});

// ---------------------------------------------------------------------------------------------

describe("COPY text/CSV splitter against PostgreSQL's own output", () => {
  let target: TestTarget;
  let client: pg.Client;
  let raw: RawPg;

  before(async () => {
    await loadSqlParser();
    target = await startTarget({ authMethod: "trust" });
    client = await connectDirect(target);
    await client.query("create table back (seq serial, c0 text, c1 text, c2 text, c3 text)");
    await client.query("create table src (ord int, c0 text, c1 text, c2 text, c3 text)");
    raw = await directSession(target);
  });
  after(async () => {
    raw?.destroy();
    await client?.end();
    await target?.stop();
  });

  /** Stores the rows in `src`; returns the query over them that COPY and SELECT both run. */
  const store = async (rows: Value[][], names: string[]): Promise<string> => {
    const params: Value[] = [];
    const tuples = rows.map((row, i) => `(${i}, ${row.map((v) => { params.push(v); return `$${params.length}`; }).join(", ")})`);
    const cols = names.map((_, i) => `c${i}`).join(", ");
    await client.query("truncate src");
    await client.query({ text: `insert into src (ord, ${cols}) values ${tuples.join(", ")}`, values: params });
    return `select ${names.map((n, i) => `c${i} as ${ident(n)}`).join(", ")} from src order by ord`;
  };

  /** One random table under random options; how many rows it checked (0: options unreadable). */
  const checkCase = async (n: number): Promise<number> => {
    const r = caseRandom(n);
    const columns = 1 + Math.floor(r() * 4);
    const o = randomOptions(r, columns);
    const names = randomNames(r, o, columns);
    const rows = [...Array(1 + Math.floor(r() * 6))].map(() => [...Array(columns)].map(() => randomValue(r, o)));
    const at = `seed ${SEED} case ${n}`;
    const select = await store(rows, names);
    const truth = (await client.query({ text: select, rowMode: "array" })).rows as Value[][];
    const copySql = `copy (${select}) to stdout ${withClause(o, names)}`;
    const f = copyFormatOf(copySql);
    assert.deepEqual({ ...f, unreadable: undefined, ambiguousNull: undefined }, { ...expectFormat(o), unreadable: undefined, ambiguousNull: undefined }, `${at}: options of ${copySql}`);
    const out = await copyOut(raw, copySql);
    assert.equal(out.error, undefined, `${at}: PostgreSQL refused ${copySql}`);
    const lines = out.lines;
    if (o.header) assert.deepEqual(splitCopyLine(lines.shift()!, f), names, `${at}: header of ${copySql}`);
    assert.equal(lines.length, truth.length, `${at}: one line per row`);

    if (f.unreadable || f.ambiguousNull) {
      // Only a text NULL string may make generated options unreadable or ambiguous; PostgreSQL is the witness.
      assert.ok(!o.csv && (f.ambiguousNull || /NULL/.test(f.unreadable ?? "")), `${at}: ${f.unreadable}`);
      assert.equal(f.ambiguousNull === true, nullIsAmbiguous(f), `${at}: ambiguous NULL reported`);
      const plain = { ...o, header: false, forceQuote: undefined, spell: () => 0 };
      if (f.ambiguousNull) {
        const [value] = splitCopyLine(o.null, { ...f, null: "\0" });
        const witness = await copyOut(raw, `copy (select ${literal(value!)}::text) to stdout ${withClause(plain, ["x"])}`);
        assert.deepEqual(witness.lines, [o.null], `${at}: PostgreSQL writes ${JSON.stringify(value)} as its NULL string ${JSON.stringify(o.null)}`);
      } else {
        const witness = await copyOut(raw, `copy (select null::text, 'x') to stdout ${withClause(plain, ["x", "y"])}`);
        assert.notDeepEqual(splitCopyLine(witness.lines[0]!, f), [null, "x"], `${at}: PostgreSQL's NULL ${JSON.stringify(o.null)} reads back`);
      }
      return 0;
    }
    assert.ok(o.csv || !TEXT_NULLS.slice(7).includes(o.null), `${at}: NULL ${JSON.stringify(o.null)} must be reported unreadable`);

    const back: Value[][] = [];
    const input: string[] = o.header ? [joinCopyLine(names, f)] : [];
    for (const [i, line] of lines.entries()) {
      const kept = readCopyLine(line, f);
      const values = kept.map((x) => x.value);
      assert.deepEqual(values, truth[i], `${at}: row ${i} of ${copySql}: ${JSON.stringify(line)}`);
      // PostgreSQL's own writer: joining the values gives its line back.
      if (o.forceQuote === undefined) assert.equal(joinCopyLine(values, f), line, `${at}: row ${i} written back`);
      assert.equal(joinCopyLine(values, f, kept), line, `${at}: row ${i} rejoined from its fields`);
      // One field replaced (as a mask would): every other field keeps its bytes.
      const j = Math.floor(r() * values.length);
      const masked = values.slice();
      masked[j] = randomValue(r, o);
      const changed = joinCopyLine(masked, f, kept);
      const reread = readCopyLine(changed, f);
      assert.deepEqual(reread.map((x) => x.value), masked, `${at}: row ${i} with field ${j} replaced: ${JSON.stringify(changed)}`);
      reread.forEach((x, k) => { if (k !== j) assert.equal(x.raw, kept[k]!.raw, `${at}: row ${i} field ${k} kept its bytes`); });
      input.push(joinCopyLine(values, f), changed);
      back.push(values, masked);
    }

    // PostgreSQL reads what the gateway would write to the same values. (Not under text NULL '\.':
    // COPY FROM takes \. at the end of a line for the end of the data, so PostgreSQL cannot load its
    // own output there; the CopyData rows above were still read exactly.)
    if (!o.csv && o.null === "\\.") return lines.length;
    await client.query("truncate back");
    const cols = names.map((_, i) => `c${i}`).join(", ");
    const inErr = await copyIn(raw, `copy back (${cols}) from stdin ${withClause(o, names, true)}`, input);
    assert.equal(inErr, undefined, `${at}: PostgreSQL refused the joined lines ${JSON.stringify(input)}`);
    const read = (await client.query({ text: `select ${cols} from back order by seq`, rowMode: "array" })).rows as Value[][];
    assert.deepEqual(read, back, `${at}: PostgreSQL read the joined lines back (${copySql}; ${JSON.stringify(input)})`);
    return lines.length;
  };

  it(`reads, writes and round-trips ${CASES} random tables (seed ${SEED})`, async () => {
    let unreadable = 0;
    let checkedRows = 0;
    const failures: string[] = [];
    for (let n = 0; n < CASES; n++) {
      try {
        const rows = await checkCase(n);
        if (rows === 0) unreadable++;
        checkedRows += rows;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    assert.equal(failures.length, 0, `${failures.length} of ${CASES} cases failed (seed ${SEED}):\n${failures.slice(0, 5).join("\n")}`);
    // The generator must reach both kinds of case.
    assert.ok(unreadable > 0 && unreadable < CASES / 2, `unreadable NULL cases: ${unreadable}`);
    assert.ok(checkedRows > CASES, `rows checked: ${checkedRows}`);
  });

  it("reports options whose output the gateway cannot read, and PostgreSQL shows why", async () => {
    await client.query("drop table if exists enc; create table enc (v text); insert into enc values ('é|ü')");
    // LATIN1: PostgreSQL converts the output, so the bytes are not the UTF-8 the gateway reads.
    const latin = await copyOut(raw, "copy enc to stdout (encoding 'LATIN1')");
    assert.deepEqual(latin.bytes, [Buffer.from([0xe9, 0x7c, 0xfc, 0x0a])]);
    for (const sql of [
      "copy enc to stdout (encoding 'LATIN1')", "copy enc to stdout with encoding 'sjis' csv", "copy enc to stdout (format binary)",
      "copy enc to stdout with binary", "select 1", "",
      "copy enc to stdout (format 'CSV')", "copy enc to stdout (header 'match')", "copy enc to stdout (new_option 1)",
    ]) assert.ok(copyFormatOf(sql).unreadable, `${sql} must be unreadable`);
    // A NULL string a value prints as: readable, but a field read as NULL may be that value.
    for (const sql of ["copy enc to stdout (null '')", "copy enc to stdout with null as 'NULL'"]) {
      assert.equal(copyFormatOf(sql).unreadable, undefined, sql);
      assert.equal(copyFormatOf(sql).ambiguousNull, true, sql);
    }
    for (const sql of ["copy enc to stdout (encoding 'UTF8')", "copy enc to stdout (encoding 'sql_ascii')", "copy enc to stdout with null as '\\N' csv force quote *"]) {
      assert.equal(copyFormatOf(sql).unreadable, undefined, sql);
    }
  });

  it("reads escapes PostgreSQL accepts but never writes (\\ooo, \\xHH, \\c) as COPY FROM does", async () => {
    const lines = ["\\101\\x42\\x4\\xg\\q\\303\\251\\xC3\\xA9\tz", "a\\\tb\\,c\t\\\\", "\\N\t\\\\N", "\\7\\x7f\\18\t\\\\x41"];
    await client.query("truncate back");
    assert.equal(await copyIn(raw, "copy back (c0, c1) from stdin", lines), undefined);
    const read = (await client.query({ text: "select c0, c1 from back order by seq", rowMode: "array" })).rows as Value[][];
    assert.deepEqual(lines.map((l) => splitCopyLine(l, DEFAULT_TEXT)), read);
  });
});

describe("COPY through the gateway with a masked column", () => {
  let target: TestTarget;
  let gw: TestGateway;
  let raw: RawPg;
  const SECRETS: string[] = [];

  before(async () => {
    await loadSqlParser();
    target = await startTarget({ authMethod: "trust" });
    const client = await connectDirect(target);
    await client.query("create table vault (id int, secret text, note text, extra text)");
    const r = prng(SEED + 1);
    const o = randomOptions(r, 4);
    for (let id = 1; id <= 12; id++) {
      const secret = `Zq${id}Vx${(randomValue(r, o) ?? "").replace(/Zq/g, "")}Wk${id}`;
      SECRETS.push(secret);
      await client.query("insert into vault values ($1, $2, $3, $4)", [id, secret, randomValue(r, o), randomValue(r, o)]);
    }
    await client.end();
    gw = await startTestGateway({ target, overrides: { masking: [{ connections: ["app"], columns: ["vault.secret"], strategy: "redact" }] } });
    raw = await directSession(target);
  });
  after(async () => {
    raw?.destroy();
    await gw?.stop();
    await target?.stop();
  });

  /** One COPY through the gateway against the same COPY direct. */
  const checkThrough = async (conn: RawPg, sql: string, columns: string[], f: CopyFormat, header: boolean, at: string): Promise<void> => {
    const direct = await copyOut(raw, sql);
    const through = await copyOut(conn, sql);
    assert.equal(through.error, undefined, at);
    assert.equal(through.lines.length, direct.lines.length, `${at}: rows`);
    // The header holds column names, not the masked column's values.
    if (header) assert.equal(through.lines.shift(), direct.lines.shift(), `${at}: header line`);
    // The secrets' plain ASCII heads survive any escaping: none may reach the client.
    const seen = Buffer.concat(through.bytes).toString("utf8");
    for (const s of SECRETS) assert.ok(!seen.includes(s.slice(0, s.indexOf("Vx") + 2)), `${at}: a secret reached the client`);
    const masked = columns.indexOf("secret");
    for (const [i, line] of through.lines.entries()) {
      const got = readCopyLine(line, f);
      const want = readCopyLine(direct.lines[i]!, f);
      assert.equal(got.length, want.length, `${at}: row ${i} fields`);
      got.forEach((x, k) => {
        if (k === masked) assert.ok(x.value !== want[k]!.value && !SECRETS.includes(x.value ?? ""), `${at}: row ${i} secret in clear`);
        else assert.equal(x.raw, want[k]!.raw, `${at}: row ${i} field ${columns[k]} as direct`);
      });
    }
  };

  it(`returns every other field exactly as direct, the masked one never in clear (${GATEWAY_CASES} cases, seed ${SEED})`, async () => {
    const { conn } = await rawLogin(gw.port, await gw.token());
    const failures: string[] = [];
    let cases = 0;
    try {
      for (let n = 0; cases < GATEWAY_CASES; n++) {
        const r = caseRandom(n + 1_000_000);
        const form = pick(r, ["copy vault to stdout", "copy vault (note, secret, id) to stdout", "copy (select extra, secret, note from vault order by id) to stdout"]);
        const columns = form.includes("(note") ? ["note", "secret", "id"] : form.includes("select") ? ["extra", "secret", "note"] : ["id", "secret", "note", "extra"];
        const o = randomOptions(r, columns.length);
        const sql = `${form} ${withClause(o, columns)}`;
        const f = copyFormatOf(sql);
        if (f.unreadable) continue;
        const at = `seed ${SEED} gateway case ${n}: ${sql}`;
        cases++;
        await checkThrough(conn, sql, columns, f, o.header, at).catch((err: Error) => failures.push(err.message));
      }
    } finally {
      conn.destroy();
    }
    assert.equal(failures.length, 0, `${failures.length} of ${GATEWAY_CASES} cases failed (seed ${SEED}):\n${failures.slice(0, 5).join("\n")}`);
  });

  it("reads a COPY run through Parse/Bind/Execute with its own options", async () => {
    const sql = "copy vault (id, note, secret) to stdout with (format csv, delimiter '|', quote '''', force_quote *)";
    const f = copyFormatOf(sql);
    const direct = await copyOut(raw, sql);
    const { conn } = await rawLogin(gw.port, await gw.token());
    try {
      const through = await extendedCopyOut(conn, sql);
      assert.equal(through.error, undefined);
      assert.equal(through.lines.length, direct.lines.length);
      for (const [i, line] of through.lines.entries()) {
        const got = readCopyLine(line, f);
        const want = readCopyLine(direct.lines[i]!, f);
        assert.deepEqual(got.slice(0, 2).map((x) => x.raw), want.slice(0, 2).map((x) => x.raw), `row ${i}: id and note as direct`);
        assert.ok(got.length === 3 && !SECRETS.includes(got[2]!.value ?? ""), `row ${i}: secret masked`);
      }
    } finally {
      conn.destroy();
    }
  });

  it("masks a NULL string that may be a value (one equal to a secret), refuses another encoding", async () => {
    const secret = "Zq100VxPlainWk100";
    const c = await connectDirect(target);
    await c.query("insert into vault values (100, $1, 'n', 'e')", [secret]);
    await c.end();
    for (const sql of [
      // Text format writes a value equal to the NULL string as that string: read as NULL, it would pass.
      `copy (select secret from vault where id = 100) to stdout (null '${secret}')`,
      "copy (select secret from vault where id = 100) to stdout with encoding 'LATIN1'",
    ]) {
      const direct = await copyOut(raw, sql);
      assert.ok(direct.lines.some((l) => l.includes("Zq100Vx")), `direct: ${sql} sends the value`);
      const { conn } = await rawLogin(gw.port, await gw.token());
      try {
        const through = await copyOutOrEnd(conn, sql);
        assert.ok(!through.lines.some((l) => l.includes("Zq100Vx")), `${sql}: the secret reached the client`);
        if (sql.includes("LATIN1")) assert.match(through.error ?? "", /cannot be masked/, sql);
        else assert.ok(through.error === undefined && through.lines.length === 1 && through.lines[0]!.includes("REDACTED"), `${sql}: ${JSON.stringify(through)}`);
      } finally {
        conn.destroy();
      }
    }
  });
});
