/**
 * Micro-benchmark of the SQL policy hot path, in process: what one statement costs the gateway
 * when its classification is cached (the common case: agents repeat a few statements) and when it
 * is not (a first parse with PostgreSQL's parser). Baseline in the same run: a bare Map lookup of
 * the same text, the floor any cache pays.
 *
 *   node --import tsx bench/policy.ts        (BENCH_ITERATIONS to change the count)
 */
import { PolicyEngine } from "../packages/portcullis/src/policy/engine.js";
import { ClassificationCache } from "../packages/portcullis/src/policy/sql/cache.js";
import { classifySql, loadSqlParser } from "../packages/portcullis/src/policy/sql/classify.js";
import type { RuleConfig } from "../packages/portcullis/src/config/schema.js";

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 200_000);

const RULES: RuleConfig[] = [
  { name: "no-schema-changes", when: { sql: { statements: ["ddl", "truncate", "dynamic"] } }, action: "deny" },
  { name: "no-server-files", when: { sql: { functions: ["pg_read_file", "pg_read_binary_file", "pg_ls_dir", "lo_import", "lo_export", "dblink*"] } }, action: "deny" },
  { name: "unbounded-delete", when: { sql: { statements: ["update", "delete"], no_where: true } }, action: "deny" },
  { name: "no-copy-program", when: { sql: { statements: ["copy_out", "copy_in"], program: true } }, action: "deny" },
  { name: "protect-vault", when: { sql: { tables: ["vault.*", "secrets"] } }, action: "deny" },
];

const STATEMENTS = [
  "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
  "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
  "select c.id, c.name, sum(p.amount) from customers c join payments p on p.customer_id = c.id where c.created_at > now() - interval '30 days' group by 1, 2 order by 3 desc limit 20",
  "WITH d AS (DELETE FROM orders WHERE id = $1 RETURNING *) SELECT * FROM d",
];

const principal = { sub: "agent", groups: ["agents"], iss: "bench", exp: 2 ** 31, run: {} };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs fn ITERATIONS times in batches of 100; returns mean, p50 and p99 per call in µs. */
function measure(fn: (i: number) => void): { mean: number; p50: number; p99: number } {
  for (let i = 0; i < 10_000; i++) fn(i); // warm up the JIT
  const batch = 100;
  const samples: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < ITERATIONS / batch; b++) {
    const s = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn(b * batch + i);
    samples.push(Number(process.hrtime.bigint() - s) / 1000 / batch);
  }
  const total = Number(process.hrtime.bigint() - t0) / 1000;
  samples.sort((a, b) => a - b);
  return { mean: total / ITERATIONS, p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

await loadSqlParser();
const engine = new PolicyEngine(RULES);
const cache = new ClassificationCache();
const plain = new Map(STATEMENTS.map((s) => [s, classifySql(s)]));
const fmt = (r: { mean: number; p50: number; p99: number }) => `mean ${r.mean.toFixed(2).padStart(7)} µs   p50 ${r.p50.toFixed(2).padStart(7)} µs   p99 ${r.p99.toFixed(2).padStart(7)} µs`;

const rows: Array<[string, ReturnType<typeof measure>]> = [
  ["baseline: Map.get of the text", measure((i) => { plain.get(STATEMENTS[i % STATEMENTS.length]!); })],
  ["cache hit: classify (LRU)", measure((i) => { cache.classify(STATEMENTS[i % STATEMENTS.length]!); })],
  ["cache hit + decide (5 rules)", measure((i) => {
    engine.decide(principal, "customers", { type: "sql", statements: cache.classify(STATEMENTS[i % STATEMENTS.length]!) });
  })],
];
const coldCount = Math.min(ITERATIONS, 5_000);
const cold = measure.call(null, (i) => { classifySql(`${STATEMENTS[i % STATEMENTS.length]!} /* ${i % coldCount} */`); });
rows.push(["cache miss: parse + classify", cold]);

console.log(`SQL policy hot path, ${ITERATIONS} iterations, ${STATEMENTS.length} statements in rotation (node ${process.version})`);
for (const [name, r] of rows) console.log(`  ${name.padEnd(32)} ${fmt(r)}`);
const hit = rows[2]![1];
console.log(`  verdict: cache-hit path ${hit.p50.toFixed(2)} µs p50 (${hit.p50 < 5 ? "under" : "OVER"} the 5 µs budget)`);
