import { startHttpBenchGateway } from "./lib/http-gateway.js";
import { startHttpUpstream } from "./lib/http-upstream.js";
import { wrk } from "./lib/wrk.js";
const up = await startHttpUpstream({ apiKey: "k", smallBytes: 2000, bigBytes: 1_000_000 });
const gw = await startHttpBenchGateway({ connections: [{ name: "plain", url: `http://127.0.0.1:${up.port}`, headers: { "X-Api-Key": "k" } }] });
const token = await gw.token("a", ["agents"], 3600);
const path = process.argv[2] ?? "/v1/customers";
const r = await wrk({ url: `${gw.base}/c/plain${path}`, threads: 1, connections: Number(process.argv[3] ?? 1), seconds: 1, authorization: `Bearer ${token}`, workDir: "/tmp/dbg" });
console.log("requests", r.requests, r.errors);
for (let i = 0; i < 40; i++) {
  const live = gw.gw.context.sessions.list();
  console.log(i * 0.5, "s: live", live.length, live.map((s) => `${s.id.slice(0, 8)} ops=${s.stats.operations} bytes=${s.stats.bytes} age=${Date.now() - s.record.startedAt.getTime()}ms`).join("; "));
  if (live.length === 0) break;
  await new Promise((res) => setTimeout(res, 500));
}
await gw.stop(); await up.stop();
