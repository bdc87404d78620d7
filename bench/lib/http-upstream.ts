/**
 * Starts bench/lib/http-upstream-server.ts as a child process (same Node, same loader flags as
 * this process: `--import tsx`) and reads back where it listens and what it serves.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface UpstreamDocument {
  bytes: number;
  records: number;
}

export interface HttpUpstream {
  host: string;
  port: number;
  pid: number;
  /** GET /v1/customers and GET /v1/big. */
  small: UpstreamDocument;
  big: UpstreamDocument;
  /** Requests answered so far (/v1/* only) and the child's CPU time (user + system), µs. */
  stats(): Promise<{ requests: number; cpuUs: number }>;
  stop(): Promise<void>;
}

export interface HttpUpstreamOptions {
  /** The X-Api-Key the upstream requires. */
  apiKey: string;
  smallBytes: number;
  bigBytes: number;
}

const SERVER = join(dirname(fileURLToPath(import.meta.url)), "http-upstream-server.ts");

export function startHttpUpstream(o: HttpUpstreamOptions): Promise<HttpUpstream> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [...process.execArgv, SERVER], {
      stdio: ["pipe", "pipe", "inherit"],
      env: {
        ...process.env,
        BENCH_UPSTREAM_KEY: o.apiKey,
        BENCH_UPSTREAM_SMALL_BYTES: String(o.smallBytes),
        BENCH_UPSTREAM_BIG_BYTES: String(o.bigBytes),
      },
    });
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("the upstream did not start within 30 s"));
    }, 30_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the upstream exited before it listened (code ${code}, signal ${signal})`));
    });
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.stdout!.removeAllListeners("data");
      child.stdout!.resume();
      const info = JSON.parse(out.slice(0, nl)) as { port: number; small: UpstreamDocument; big: UpstreamDocument };
      const host = "127.0.0.1";
      let stopped: Promise<void> | undefined;
      resolve({
        host,
        port: info.port,
        pid: child.pid!,
        small: info.small,
        big: info.big,
        async stats() {
          const res = await fetch(`http://${host}:${info.port}/_stats`, { headers: { "x-api-key": o.apiKey } });
          return (await res.json()) as { requests: number; cpuUs: number };
        },
        stop() {
          stopped ??= new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
            child.once("exit", () => {
              clearTimeout(kill);
              done();
            });
            child.kill("SIGTERM");
          });
          return stopped;
        },
      });
    });
  });
}
