/**
 * Stands in for postgres.js's tests/test.js in a scratch copy of its suite (bench/compat/postgres-js.ts
 * puts it there). Same contract for the tests — `t(name, [options], fn)` where fn returns
 * `[expected, got]`, compared with `!==` after awaiting both, a per-test timeout, tests run one at a
 * time in file order — with one difference: the upstream runner skips every test after the first
 * failure, which would hide all but one difference; this one runs them all and writes each result
 * to the JSON file named by COMPAT_RESULTS, then exits.
 */
import { writeFileSync } from "node:fs";
import util from "node:util";

const results = [];
let chain = Promise.resolve();
let queued = 0;

export const nt = () => undefined;
export const ot = (...rest) => t(...rest);
export const t = (name, options, fn) => {
  if (typeof options !== "object") (fn = options), (options = {});
  const line = new Error().stack.split("\n")[2].match(":([0-9]+):")[1];
  queued++;
  chain = chain.then(() => run(name, line, options, fn)).then(finishIfLast);
};
t.timeout = 5;

async function run(name, line, options, fn) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("Timed out")), (options.timeout || t.timeout) * 1000);
  });
  try {
    const x = await Promise.race([timeout, fn()]);
    if (!Array.isArray(x)) throw new Error("Test should return result array");
    const [expected, got] = await Promise.race([timeout, Promise.all(x)]);
    if (expected !== got) throw new Error(util.inspect(expected) + " != " + util.inspect(got));
    results.push({ name, line, ok: true });
  } catch (err) {
    results.push({ name, line, ok: false, error: String(err instanceof Error ? err.message : util.inspect(err)).slice(0, 300) });
  } finally {
    clearTimeout(timer);
  }
}

/** The suite queues every test at import: the last one is the one after which nothing more was queued. */
function finishIfLast() {
  if (results.length === queued) setTimeout(() => results.length === queued && finish(), 200);
}

function finish() {
  writeFileSync(process.env.COMPAT_RESULTS, JSON.stringify(results));
  process.exit(0);
}
