/**
 * The upstream API of bench/http.ts, run as a child process (bench/lib/http-upstream.ts starts
 * it) so that it never shares the gateway's event loop. A plain node:http server on a free
 * loopback port that answers from documents built once at start:
 *
 *   GET /v1/customers  a JSON list of customer records of about BENCH_UPSTREAM_SMALL_BYTES bytes
 *   GET /v1/big        the same kind of list, about BENCH_UPSTREAM_BIG_BYTES bytes
 *   GET /_stats        {requests, cpuUs}: requests answered so far and this process's CPU time
 *
 * Every answer has a Content-Length. A request without `X-Api-Key: <BENCH_UPSTREAM_KEY>` gets
 * 401, so a 200 proves that the hop in front (nginx, the gateway) added the credential.
 * On start it prints one line to stdout: {"port":…,"small":{bytes,records},"big":{bytes,records}}.
 */
import { createServer, type ServerResponse } from "node:http";

const key = process.env.BENCH_UPSTREAM_KEY ?? "";
const smallBytes = Number(process.env.BENCH_UPSTREAM_SMALL_BYTES ?? 2000);
const bigBytes = Number(process.env.BENCH_UPSTREAM_BIG_BYTES ?? 1_000_000);

const FIRST = ["Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia", "Tim", "Hedy"];
const LAST = ["Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson", "Perlman", "Berners-Lee", "Lamarr"];
const CITIES = ["Springfield", "Portland", "Austin", "Boston", "Denver", "Madison", "Lisbon", "Oslo"];
const PLANS = ["free", "basic", "gold", "enterprise"];

function customer(i: number): Record<string, unknown> {
  const first = FIRST[i % FIRST.length]!;
  const last = LAST[(i * 7) % LAST.length]!;
  return {
    id: 1000 + i,
    name: `${first} ${last}`,
    email: `${first.toLowerCase()}.${last.toLowerCase()}${i}@example.com`,
    ssn: `${String(100 + (i % 665)).padStart(3, "0")}-${String(10 + (i % 89)).padStart(2, "0")}-${String(1000 + ((i * 37) % 9000)).padStart(4, "0")}`,
    plan: PLANS[i % PLANS.length],
    city: CITIES[i % CITIES.length],
    balance: Math.round(((i * 7919) % 100000)) / 100,
    created_at: new Date(Date.UTC(2024, 0, 1) + i * 3_600_000).toISOString(),
  };
}

/** `{"object":"list","data":[…],"has_more":false}` with as many records as it takes to reach `bytes`. */
function document(bytes: number): { body: Buffer; records: number } {
  const head = '{"object":"list","data":[';
  const tail = '],"has_more":false}';
  const parts: string[] = [];
  let length = head.length + tail.length;
  while (length < bytes) {
    const s = JSON.stringify(customer(parts.length));
    parts.push(s);
    length += s.length + (parts.length > 1 ? 1 : 0);
  }
  return { body: Buffer.from(head + parts.join(",") + tail, "utf8"), records: parts.length };
}

const small = document(smallBytes);
const big = document(bigBytes);
let requests = 0;

function send(res: ServerResponse, status: number, body: Buffer, type = "application/json"): void {
  res.writeHead(status, { "content-type": type, "content-length": String(body.length) });
  res.end(body);
}

const server = createServer((req, res) => {
  if (req.headers["x-api-key"] !== key) {
    send(res, 401, Buffer.from('{"error":"no api key"}'));
    return;
  }
  const q = req.url?.indexOf("?") ?? -1;
  const path = q >= 0 ? req.url!.slice(0, q) : req.url;
  if (path === "/v1/customers") {
    requests++;
    send(res, 200, small.body);
  } else if (path === "/v1/big") {
    requests++;
    send(res, 200, big.body);
  } else if (path === "/_stats") {
    const cpu = process.cpuUsage();
    send(res, 200, Buffer.from(JSON.stringify({ requests, cpuUs: cpu.user + cpu.system })));
  } else {
    send(res, 404, Buffer.from('{"error":"not found"}'));
  }
});
// Idle keep-alive connections of the proxies in front stay open between runs.
server.keepAliveTimeout = 300_000;
server.headersTimeout = 301_000;
server.requestTimeout = 0;
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ port, small: { bytes: small.body.length, records: small.records }, big: { bytes: big.body.length, records: big.records } })}\n`);
});
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => process.exit(0));
// The parent went away: so does this process.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
