/**
 * Detector throughput: MB/s of `compileTextMasker(all detectors).mask` on one core, over realistic
 * rows, against baselines measured in the same run.
 *
 * Data (deterministic, seeded):
 * - "customer rows": tab-separated rows shaped like `COPY customers TO STDOUT` output — id, name,
 *   street address, city, state, zip, free-text notes (order numbers, dates, amounts, versions,
 *   URLs, UUIDs, timestamps), status, amount, created_at — where 5% of rows carry PII (an email,
 *   phone, card, SSN, IBAN, IP, JWT or API token, in a field or inside the note);
 * - "PII-heavy rows": every row carries several sensitive values (email, phone, card, SSN, IBAN,
 *   IP) next to ordinary fields — the worst realistic case for the replacement path.
 * Each set is masked as whole rows (one string per row) and field by field (one string per column
 * value, as DataRow values arrive). Throughput counts UTF-8 bytes of the input.
 *
 * Baselines in the same run: `indexOf("@")` over the same strings (the floor of any scan) and UTF-8
 * decoding of the row bytes into strings (what the gateway does anyway before masking text). For
 * reference, the design not taken: one RegExp alternation of every detector's strict patterns
 * (exec loop only, no checksums), on a 2 MB sample. Times are CPU time of this process (one core).
 * The row generators are exported for other benchmarks.
 *
 *   node --import tsx bench/masking-detectors.ts      (BENCH_MB=50 total size, BENCH_RUNS=5)
 */
import { cpus } from "node:os";
import { pathToFileURL } from "node:url";
import { DETECTORS, KNOWN_DETECTORS } from "../packages/portcullis/src/masking/detectors/index.js";
import { compileTextMasker } from "../packages/portcullis/src/masking/text-masker.js";
import { median } from "./lib/stats.js";

const TOTAL_MB = Number(process.env.BENCH_MB ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TARGET = 200;

// ---- deterministic data -------------------------------------------------------------------------

let seed = 0x9e3779b9;
function rand(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const digits = (n: number) => Array.from({ length: n }, () => int(0, 9)).join("");
const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[int(0, 15)]).join("");
const alnum = (n: number) => Array.from({ length: n }, () => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[int(0, 61)]).join("");

const FIRST = ["Alice", "Bob", "Carla", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "José", "Kwame", "Lena", "Mateo", "Nora", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Zoë"];
const LAST = ["Johnson", "Smith", "García", "Müller", "Okafor", "Nakamura", "Rossi", "Kowalski", "Dubois", "O'Brien", "Lindqvist", "Haddad", "Silva", "Nguyen", "Patel"];
const STREETS = ["Elm Street", "Main St", "Oak Avenue", "Rue de la Paix", "Baker Street", "Sunset Blvd", "Hauptstraße", "Maple Dr", "Pine Court", "Harbor Way"];
const CITIES = [["Springfield", "IL"], ["Portland", "OR"], ["Austin", "TX"], ["Boston", "MA"], ["Denver", "CO"], ["Madison", "WI"], ["Raleigh", "NC"], ["Tucson", "AZ"]] as const;
const STATUS = ["active", "inactive", "pending", "suspended", "trial", "churned"];
const WORDS = (
  "customer called about the delivery window and asked whether the replacement part could be shipped earlier " +
  "than planned; agreed to waive the fee this time. prefers email contact, follow up next week regarding the " +
  "renewal quote and the discount that sales promised during the last quarterly review meeting with procurement"
).split(" ");
const NOTE_FRAGMENTS = [
  () => `order #${int(10000, 99999)}`,
  () => `on ${int(2019, 2025)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}`,
  () => `refund of $${int(1, 999)}.${digits(2)}`,
  () => `ticket ${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`,
  () => `client v${int(1, 4)}.${int(0, 20)}.${int(0, 9)}`,
  () => `see https://support.example.com/cases/${int(100000, 999999)}`,
  () => `at ${String(int(0, 23)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}`,
  () => `${int(2, 40)} units`,
];

function note(): string {
  const n = int(8, 30);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rand() < 0.12 ? pick(NOTE_FRAGMENTS)() : pick(WORDS));
  const s = out.join(" ");
  return s[0]!.toUpperCase() + s.slice(1) + ".";
}

function luhnComplete(prefix: string, len: number): string {
  let body = prefix + digits(len - prefix.length - 1);
  for (let c = 0; c <= 9; c++) {
    const cand = body + c;
    let sum = 0;
    for (let i = 0; i < cand.length; i++) {
      let d = Number(cand[cand.length - 1 - i]);
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    if (sum % 10 === 0) return cand;
  }
  return body + "0";
}
function ibanFor(country: string, bban: string): string {
  const s = bban + country + "00";
  let rem = 0;
  for (const ch of s) rem = /\d/.test(ch) ? (rem * 10 + Number(ch)) % 97 : (rem * 100 + ch.charCodeAt(0) - 55) % 97;
  return country + String(98 - rem).padStart(2, "0") + bban;
}
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

const PII = [
  () => `${pick(FIRST).toLowerCase().normalize("NFD").replace(/[^a-z]/g, "")}.${pick(LAST).toLowerCase().replace(/[^a-z]/g, "")}${int(1, 99)}@${pick(["example.com", "mail.example.org", "corp.example.net"])}`,
  () => pick([`+1 (${int(200, 999)}) ${int(200, 999)}-${digits(4)}`, `${int(200, 999)}-${int(200, 999)}-${digits(4)}`, `+44 20 ${digits(4)} ${digits(4)}`]),
  () => {
    const [prefix, len] = pick([["4", 16], ["51", 16], ["37", 15]] as const);
    const c = luhnComplete(prefix, len);
    if (rand() < 0.5) return c;
    return len === 15 ? `${c.slice(0, 4)} ${c.slice(4, 10)} ${c.slice(10)}` : c.replace(/(\d{4})(?=\d)/g, "$1 ");
  },
  () => `${int(100, 665)}-${String(int(1, 99)).padStart(2, "0")}-${String(int(1, 9999)).padStart(4, "0")}`,
  () => ibanFor("DE", digits(18)),
  () => `${int(1, 223)}.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`,
  () => `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ sub: alnum(10), iat: int(1e9, 2e9) })}.${alnum(43)}`,
  () => `ghp_${alnum(36)}`,
];

function address(): string[] {
  const [city, st] = pick(CITIES);
  return [`${int(1, 9999)} ${pick(STREETS)}${rand() < 0.3 ? `, Apt ${int(1, 40)}${pick(["", "A", "B"])}` : ""}`, city, st, String(int(10000, 99999))];
}

function customerRow(id: number, withPii: boolean): string[] {
  let n = note();
  const fields = [String(id), `${pick(FIRST)} ${pick(LAST)}`, ...address()];
  if (withPii) {
    const v = pick(PII)();
    if (rand() < 0.5) n = `${n} Contact: ${v}.`;
    else fields.push(v);
  }
  return [...fields, n, pick(STATUS), `${int(0, 99999)}.${digits(2)}`, `2024-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")} ${String(int(0, 23)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}+00`];
}

function piiHeavyRow(id: number): string[] {
  return [String(id), `${pick(FIRST)} ${pick(LAST)}`, PII[0]!(), PII[1]!(), PII[2]!(), PII[3]!(), PII[4]!(), ...address(), PII[5]!(), note().slice(0, 80)];
}

interface DataSet {
  name: string;
  rows: string[];
  /** The rows' column values, one string each. */
  fields: string[];
  rowBuffers: Buffer[];
  /** UTF-8 bytes of the rows. */
  bytes: number;
}

function build(name: string, targetBytes: number, make: (i: number) => string[]): DataSet {
  const rows: string[] = [];
  const fields: string[] = [];
  let bytes = 0;
  for (let i = 1; bytes < targetBytes; i++) {
    const f = make(i);
    const row = f.join("\t");
    rows.push(row);
    fields.push(...f);
    bytes += Buffer.byteLength(row);
  }
  return { name, rows, fields, rowBuffers: rows.map((r) => Buffer.from(r)), bytes };
}

// ---- measurement --------------------------------------------------------------------------------

/**
 * Median MB/s of `fn` over RUNS runs after one warm-up, counting `bytes` per run. Time is the
 * process's CPU time (user + system), not wall time: the figure is per core, and other load on
 * the machine does not leak into it.
 */
function measure(bytes: number, fn: () => number): number {
  fn();
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    rates.push(bytes / 1e6 / ((c.user + c.system) / 1e6));
  }
  return median(rates);
}

const utf8 = (list: readonly string[]) => list.reduce((n, s) => n + Buffer.byteLength(s), 0);

/** The design not taken: one RegExp of every detector's strict patterns, exec loop only (no checks). */
function combinedRegExp(): RegExp {
  return new RegExp(DETECTORS.flatMap((d) => d.patterns).map((p) => `(${p})`).join("|"), "g");
}

export { build, customerRow, piiHeavyRow, rand };
export type { DataSet };

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main();

function main(): void {
  const mixed = build("customer rows, 5% with PII", TOTAL_MB * 0.8 * 1e6, (i) => customerRow(i, rand() < 0.05));
  const heavy = build("PII-heavy rows", TOTAL_MB * 0.2 * 1e6, (i) => piiHeavyRow(i));
  const masker = compileTextMasker([...KNOWN_DETECTORS], "redact", Buffer.from("bench-key"));
  const naive = combinedRegExp();

  const table: Array<{ set: string; what: string; mbps: number; target?: boolean }> = [];
  for (const ds of [mixed, heavy]) {
    const masked = ds.rows.filter((r) => masker.mask(r) !== undefined).length;
    const set = `${ds.name}: ${(ds.bytes / 1e6).toFixed(1)} MB, ${ds.rows.length} rows, ${((100 * masked) / ds.rows.length).toFixed(1)}% of rows masked`;
    const maskAll = (list: string[]) => () => {
      let n = 0;
      for (let i = 0; i < list.length; i++) if (masker.mask(list[i]!) !== undefined) n++;
      return n;
    };
    table.push({
      set,
      what: 'baseline: indexOf("@") per row',
      mbps: measure(ds.bytes, () => {
        let n = 0;
        for (let i = 0; i < ds.rows.length; i++) if (ds.rows[i]!.indexOf("@") >= 0) n++;
        return n;
      }),
    });
    table.push({
      set,
      what: "baseline: UTF-8 decode of each row",
      mbps: measure(ds.bytes, () => {
        let n = 0;
        for (let i = 0; i < ds.rowBuffers.length; i++) n += ds.rowBuffers[i]!.toString("utf8").length;
        return n;
      }),
    });
    table.push({ set, what: "mask: whole row per call", mbps: measure(ds.bytes, maskAll(ds.rows)), target: true });
    const fieldBytes = utf8(ds.fields);
    table.push({ set, what: `mask: one call per field (${(fieldBytes / ds.fields.length).toFixed(0)} B avg)`, mbps: measure(fieldBytes, maskAll(ds.fields)), target: true });
    // The naive design is slow: measure it on a 2 MB sample only.
    const sample = ds.rows.slice(0, Math.ceil((ds.rows.length * 2e6) / ds.bytes));
    table.push({
      set,
      what: "reference: one RegExp of all patterns, rows",
      mbps: measure(utf8(sample), () => {
        let n = 0;
        for (const r of sample) {
          naive.lastIndex = 0;
          while (naive.exec(r) !== null) n++;
        }
        return n;
      }),
    });
  }

  console.log(`Masking detectors: ${KNOWN_DETECTORS.join(", ")}`);
  console.log(`node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}; MB/s per CPU-second of this process, median of ${RUNS} runs; target ${TARGET} MB/s`);
  let current = "";
  for (const row of table) {
    if (row.set !== current) {
      console.log(`\n${row.set}`);
      current = row.set;
    }
    const verdict = row.target ? (row.mbps >= TARGET ? "meets target" : "below target") : "";
    console.log(`  ${row.what.padEnd(46)} ${row.mbps.toFixed(0).padStart(7)} MB/s   ${verdict}`);
  }
}
