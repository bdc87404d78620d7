/**
 * One driver per protocol for the conformance suite: each runs the same kinds of operation (a small
 * allowed one, one a rule denies, one a rule holds for approval, one that runs until it is stopped,
 * one with a large answer) through the gateway with a real client against a real target, and says
 * how it ended in neutral words. The suite asserts the same outcomes for every driver.
 */
import pg from "pg";
import type { TestGateway } from "../support/gateway.js";

/** How an operation came back: answered, refused (with the gateway's words), or cut off. */
export type Outcome = { kind: "answered"; text: string } | { kind: "refused"; detail: string } | { kind: "ended"; detail: string };

export interface Running {
  /** Resolves when the operation (and so the session) ended, however. */
  ended: Promise<Outcome>;
  /** The client walks away (closes its socket). */
  leave(): void;
}

export interface ProtocolDriver {
  protocol: "postgres" | "http";
  /** The connection the driver's operations use. */
  connection: string;
  small(token: string): Promise<Outcome>;
  denied(token: string): Promise<Outcome>;
  /** An operation a rule holds for approval (hold mode): running until decided or abandoned. */
  held(token: string): Running;
  /** An operation that runs until the session is ended (a long statement, an event stream). */
  endless(token: string): Promise<Running>;
  /** An answer of about `bytes` bytes. */
  large(token: string, bytes: number): Promise<Outcome>;
}

// ---- PostgreSQL: node-postgres against a real PostgreSQL ----

export function postgresDriver(gw: TestGateway): ProtocolDriver {
  const connect = async (token: string) => {
    const client = new pg.Client(gw.clientConfig(token));
    client.on("error", () => undefined);
    await client.connect();
    return client;
  };
  const run = async (token: string, sql: string): Promise<Outcome> => {
    const client = await connect(token);
    try {
      const r = await client.query(sql);
      return { kind: "answered", text: JSON.stringify(r.rows) };
    } catch (err) {
      return { kind: "refused", detail: `${(err as { code?: string }).code}: ${(err as Error).message}` };
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const running = (client: pg.Client, sql: string): Running => ({
    ended: client.query(sql).then(
      (r) => ({ kind: "answered", text: JSON.stringify(r.rows) }),
      (err: Error & { code?: string }) => ({ kind: "ended", detail: `${err.code}: ${err.message}` }),
    ),
    leave: () => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(),
  });
  return {
    protocol: "postgres",
    connection: "app",
    small: (token) => run(token, "select 'conformance' as word"),
    denied: (token) => run(token, "delete from conformance_items"),
    held: (token) => {
      let client: pg.Client | undefined;
      const ended = connect(token).then((c) => {
        client = c;
        return running(c, "update conformance_items set n = n + 1").ended;
      });
      return { ended, leave: () => (client as unknown as { connection: { stream: { destroy(): void } } } | undefined)?.connection.stream.destroy() };
    },
    endless: async (token) => running(await connect(token), "select pg_sleep(60)"),
    large: (token, bytes) => run(token, `select repeat('x', ${bytes}) as big`),
  };
}

// ---- HTTP: fetch against a stock Node HTTP server ----

export function httpDriver(gw: TestGateway, connection: string): ProtocolDriver {
  const url = (path: string) => `http://127.0.0.1:${gw.httpPort}/c/${connection}${path}`;
  const call = async (token: string, path: string, init: RequestInit = {}): Promise<Outcome> => {
    try {
      const res = await fetch(url(path), { ...init, headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      return res.headers.get("x-portcullis-refusal") ? { kind: "refused", detail: `${res.status}: ${text}` } : { kind: "answered", text };
    } catch (err) {
      return { kind: "ended", detail: String((err as Error).cause ?? err) };
    }
  };
  return {
    protocol: "http",
    connection,
    small: (token) => call(token, "/word"),
    denied: (token) => call(token, "/items/1", { method: "DELETE" }),
    held: (token) => {
      const abort = new AbortController();
      return { ended: call(token, "/items/1", { method: "PUT", signal: abort.signal }), leave: () => abort.abort() };
    },
    endless: async (token) => {
      const abort = new AbortController();
      const res = await fetch(url("/events"), { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
      const reader = res.body!.getReader();
      const ended = (async (): Promise<Outcome> => {
        try {
          for (;;) if ((await reader.read()).done) return { kind: "ended", detail: "the stream ended" };
        } catch (err) {
          return { kind: "ended", detail: String((err as Error).message) };
        }
      })();
      return { ended, leave: () => abort.abort() };
    },
    large: (token, bytes) => call(token, `/large?bytes=${bytes}`),
  };
}
