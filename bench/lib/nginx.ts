/**
 * A throwaway nginx as a plain reverse proxy, the baseline for "what does any HTTP hop cost":
 * a non-daemon child (`daemon off;`) with one worker, its config, pid file, error log and temp
 * folders in a temp dir of its own, on a free loopback port, killed at the end.
 *
 * `/c/<name>/<path>` is proxied to `<upstream>/<path>` (the URL shape of the gateway's HTTP
 * targets) over a keep-alive pool of upstream connections (`upstream { keepalive }`, HTTP/1.1,
 * `Connection: ""`). The client's Authorization header is dropped and the configured headers
 * (the upstream's API key) are set, as the gateway does; access logging is off. Everything
 * else is nginx's default, proxy buffering included. `GET /_ready` answers 204 (the start-up probe). Keep-alive limits are raised on both sides
 * (keepalive_requests 1000 by default) so that neither the load generator's connections nor the
 * upstream pool are closed and reopened during a run; the gateway and the upstream never close
 * an idle keep-alive connection within a run either.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freeLoopbackPort } from "./pgbouncer.js";
import { childPids, processCpuUs } from "./proc.js";

export interface NginxOptions {
  upstreamHost: string;
  upstreamPort: number;
  /** The path prefix's name: /c/<name>/… goes to the upstream's /…. */
  name: string;
  /** Request headers nginx sets toward the upstream (e.g. the API key). */
  setHeaders: Record<string, string>;
  /** Idle keep-alive connections to the upstream kept per worker (default 32). */
  keepalive?: number;
  binary?: string;
}

export class Nginx {
  private stopped: Promise<void> | undefined;

  private constructor(
    readonly host: string,
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
    private readonly stderr: () => string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /** The config file as written (headers' values included). */
  get configFile(): string {
    return join(this.dir, "nginx.conf");
  }

  static async start(o: NginxOptions): Promise<Nginx> {
    const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-nginx-"));
    const port = await freeLoopbackPort();
    const host = "127.0.0.1";
    const quote = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;
    const conf = [
      "daemon off;",
      "master_process on;",
      "worker_processes 1;",
      // As root, the worker would otherwise switch to `nobody`, who cannot enter this 0700 dir.
      ...(process.getuid?.() === 0 ? ["user root;"] : []),
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")} warn;`,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      `  client_body_temp_path ${join(dir, "client_body")};`,
      `  proxy_temp_path ${join(dir, "proxy")};`,
      `  fastcgi_temp_path ${join(dir, "fastcgi")};`,
      `  uwsgi_temp_path ${join(dir, "uwsgi")};`,
      `  scgi_temp_path ${join(dir, "scgi")};`,
      "  keepalive_requests 1000000;",
      "  keepalive_timeout 300s;",
      "  upstream api {",
      `    server ${o.upstreamHost}:${o.upstreamPort};`,
      `    keepalive ${o.keepalive ?? 32};`,
      "    keepalive_requests 1000000;",
      "    keepalive_timeout 300s;",
      "  }",
      "  server {",
      `    listen ${host}:${port};`,
      "    location = /_ready { return 204; }",
      `    location /c/${o.name}/ {`,
      "      proxy_pass http://api/;",
      "      proxy_http_version 1.1;",
      '      proxy_set_header Connection "";',
      '      proxy_set_header Authorization "";',
      "      proxy_set_header X-Forwarded-For $remote_addr;",
      "      proxy_set_header X-Forwarded-Proto $scheme;",
      "      proxy_set_header X-Forwarded-Host $host;",
      ...Object.entries(o.setHeaders).map(([k, v]) => `      proxy_set_header ${k} ${quote(v)};`),
      "    }",
      "  }",
      "}",
      "",
    ].join("\n");
    writeFileSync(join(dir, "nginx.conf"), conf, { mode: 0o600 });
    const child = spawn(o.binary ?? "nginx", ["-p", `${dir}/`, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      if (stderr.length < 10_000) stderr += d.toString();
    });
    const nginx = new Nginx(host, port, dir, child, () => stderr);
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once("spawn", () => resolve(undefined));
      child.once("error", (err) => resolve(err));
    });
    if (spawned) {
      rmSync(dir, { recursive: true, force: true });
      throw spawned;
    }
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const why = `${stderr.trim()}\n${nginx.errorLogTail()}`.trim();
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`nginx exited at start (code ${child.exitCode}, signal ${child.signalCode}):\n${why}`);
      }
      try {
        const res = await fetch(`http://${host}:${port}/_ready`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return nginx;
      } catch {
        if (Date.now() > deadline) {
          await nginx.stop();
          throw new Error(`nginx did not answer on ${host}:${port} within 15 s:\n${nginx.errorLogTail()}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** CPU time (user + system) of the master and its workers, µs; undefined when /proc cannot tell. */
  cpuUs(): number | undefined {
    let total = 0;
    for (const pid of [this.pid, ...childPids(this.pid)]) {
      const us = processCpuUs(pid);
      if (us === undefined) return undefined;
      total += us;
    }
    return total;
  }

  /** Worker processes (children of the master). */
  workers(): number[] {
    return childPids(this.pid);
  }

  errorLog(): string {
    try {
      return readFileSync(join(this.dir, "error.log"), "utf8");
    } catch {
      return "";
    }
  }

  errorLogTail(lines = 20): string {
    return this.errorLog().trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** What nginx wrote to stderr (normally nothing: everything goes to the error log). */
  get stderrText(): string {
    return this.stderr();
  }

  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        rmSync(this.dir, { recursive: true, force: true });
        resolve();
      };
      if (this.child.exitCode !== null || this.child.signalCode !== null) return done();
      const kill = setTimeout(() => this.child.kill("SIGKILL"), 5000);
      this.child.once("exit", () => {
        clearTimeout(kill);
        done();
      });
      // SIGTERM: nginx's fast shutdown; the master stops its workers before it exits.
      this.child.kill("SIGTERM");
    });
    return this.stopped;
  }
}
