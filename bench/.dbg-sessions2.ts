import { ServerResponse } from "node:http";
import { connect } from "node:net";
import { startHttpBenchGateway } from "./lib/http-gateway.js";
import { startHttpUpstream } from "./lib/http-upstream.js";
const origWrite = ServerResponse.prototype.write;
(ServerResponse.prototype as any).write = function (this: ServerResponse, ...args: any[]) {
  const ok = (origWrite as any).apply(this, args);
  if (!ok) console.log(`  res.write returned false; destroyed=${this.destroyed} socketDestroyed=${this.socket?.destroyed ?? "no socket"}`);
  return ok;
};
const up = await startHttpUpstream({ apiKey: "k", smallBytes: 2000, bigBytes: 1_000_000 });
const gw = await startHttpBenchGateway({
  connections: ["plain", "masked"].map((name) => ({ name, url: `http://127.0.0.1:${up.port}`, headers: { "X-Api-Key": "k" } })),
  masking: [{ connections: ["masked"], keys: ["ssn"], detectors: ["email"], strategy: "redact" }],
});
const token = await gw.token("a", ["agents"], 3600);
const port = Number(new URL(gw.base).port);
for (const conn of ["plain", "masked"]) for (const path of ["/v1/customers", "/v1/big"]) for (const delayMs of [0, 1, 3]) {
  const s = connect(port, "127.0.0.1");
  await new Promise((r) => s.once("connect", r));
  s.write(`GET /c/${conn}${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  s.on("data", () => {});
  await new Promise((r) => setTimeout(r, delayMs));
  s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const live = gw.gw.context.sessions.list();
  console.log(`${conn} ${path} close after ${delayMs} ms: live sessions ${live.length}`, live.map((x) => `ops=${x.stats.operations} bytes=${x.stats.bytes}`).join("; "));
}
await gw.stop(); await up.stop();
