/** A stock HTTP app (an Express app, a plain handler) listening on a free loopback port, as a target behind the gateway. */
import { type RequestListener, createServer } from "node:http";

export interface LocalHttpTarget {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Closes the server and every connection to it. */
  close(): void;
}

export async function listenLocal(handler: RequestListener): Promise<LocalHttpTarget> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => { server.closeAllConnections(); server.close(); },
  };
}
