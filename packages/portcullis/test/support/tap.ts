/** A loopback TCP relay that records every byte in each direction, to prove what a client saw. */
import { type AddressInfo, createConnection, createServer } from "node:net";

export interface Tap {
  port: number;
  /** Bytes the server sent toward the client. */
  toClient(): Buffer;
  /** Bytes the client sent toward the server. */
  toServer(): Buffer;
  close(): Promise<void>;
}

export async function startTap(targetHost: string, targetPort: number): Promise<Tap> {
  const down: Buffer[] = [];
  const up: Buffer[] = [];
  const server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    client.on("data", (b) => { up.push(b); upstream.write(b); });
    upstream.on("data", (b) => { down.push(b); client.write(b); });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    toClient: () => Buffer.concat(down),
    toServer: () => Buffer.concat(up),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
