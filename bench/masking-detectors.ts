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
 * Baselines: `indexOf("@")` over the same strings (the floor of any scan) and UTF-8 decoding of
 * the row bytes into strings (what the gateway does anyway before masking text).
 *
 *   node --import tsx bench/masking-detectors.ts      (BENCH_MB=50 total size, BENCH_RUNS=5)
 */
import { KNOWN_DETECTORS } from "../packages/portcullis/src/masking/detectors/index.js";
import { compileTextMasker } from "../packages/portcullis/src/masking/text-masker.js";
import { pathToFileURL } from "node:url";
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
  () => { const c = luhnComplete(pick(["4", "51", "37"]), 16); return rand() < 0.5 ? c : c.replace(/(\d{4})(?=\d)/g, "$1 "); },
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

interface DataSet { name: string; rows: string[]; fields: string[]; rowBuffers: Buffer[]; bytes: number }
function build(name: string, targetBytes: number, make: (i: number) => string[]): DataSet {
  const rows: string[] = [];
  const fields: string[] = [];
  let bytes = 0;
  for (let i = 1; bytes < targetBytes; i++) {
    const f = make(i);
    const row = f.join("\t");
    rows.push(row);
    fields.push(...f);
    bytes += Buffer.byteLength(row) ;
  }
  return { name, rows, fields, rowBuffers: rows.map((r) => Buffer.from(r)), bytes };
}

// ---- measurement --------------------------------------------------------------------------------

function runs(bytes: number, fn: () => number): { mbps: number; sink: number } {
  fn(); // warm up
  const rates: number[] = [];
  let sink = 0;
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    sink += fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(bytes / 1e6 / s);
  }
  return { mbps: median(rates), sink };
}

export { build, customerRow, piiHeavyRow, rand };
export type { DataSet };

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main();

function main(): void {
const mixed = build("customer rows, 5% with PII", TOTAL_MB * 0.8 * 1e6, (i) => customerRow(i, rand() < 0.05));
const heavy = build("PII-heavy rows", TOTAL_MB * 0.2 * 1e6, (i) => piiHeavyRow(i));
const masker = compileTextMasker([...KNOWN_DETECTORS], "redact", Buffer.from("bench-key"));

const table: Array<{ set: string; what: string; mbps: number; note: string }> = [];
for (const ds of [mixed, heavy]) {
  let masked = 0;
  for (const r of ds.rows) if (masker.mask(r) !== undefined) masked++;
  const items = (list: string[]) => () => { let n = 0; for (let i = 0; i < list.length; i++) if (list[i]!.indexOf("@") >= 0) n++; return n; };
  const decode = () => { let n = 0; for (let i = 0; i < ds.rowBuffers.length; i++) n += ds.rowBuffers[i]!.toString("utf8").length; return n; };
  const mask = (list: string[]) => () => { let n = 0; for (let i = 0; i < list.length; i++) if (masker.mask(list[i]!) !== undefined) n++; return n; };
  const label = `${ds.name} (${(ds.bytes / 1e6).toFixed(1)} MB, ${ds.rows.length} rows, ${((100 * masked) / ds.rows.length).toFixed(1)}% masked)`;
  table.push({ set: label, what: "baseline: indexOf(\"@\") per row", mbps: runs(ds.bytes, items(ds.rows)).mbps, note: "" });
  table.push({ set: label, what: "baseline: UTF-8 decode per row", mbps: runs(ds.bytes, decode).mbps, note: "" });
  const whole = runs(ds.bytes, mask(ds.rows)).mbps;
  table.push({ set: label, what: "mask, whole row per call", mbps: whole, note: whole >= TARGET ? "meets target" : "BELOW target" });
  // Field by field: same bytes minus the tab separators, counted as the same payload.
  const fieldBytes = ds.fields.reduce((n, f) => n + Buffer.byteLength(f), 0);
  const perField = runs(fieldBytes, mask(ds.fields)).mbps;
  table.push({ set: label, what: `mask, one call per field (${(fieldBytes / ds.fields.length).toFixed(0)} B avg)`, mbps: perField, note: perField >= TARGET ? "meets target" : "BELOW target" });
}

console.log(`masking detectors: ${KNOWN_DETECTORS.join(", ")}`);
console.log(`node ${process.version}, one core, median of ${RUNS} runs, target ${TARGET} MB/s\n`);
let current = "";
for (const row of table) {
  if (row.set !== current) {
    console.log(row.set);
    current = row.set;
  }
  console.log(`  ${row.what.padEnd(44)} ${row.mbps.toFixed(0).padStart(7)} MB/s   ${row.note}`);
}
}
