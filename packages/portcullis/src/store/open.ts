/**
 * Turns the config's `store:` URL into a Store. The only place that knows which URL schemes exist,
 * so adding the Postgres store for replicas is one branch here.
 */
import { PortcullisError } from "../errors.js";
import { SqliteStore, type SqliteStoreOptions } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

const SQLITE_PREFIX = "sqlite:";

/** Accepts `sqlite:PATH` and `sqlite::memory:`; anything else is refused with E_STORE. */
export function openStore(url: string, options?: SqliteStoreOptions): Store {
  if (url.startsWith(SQLITE_PREFIX)) {
    const path = url.slice(SQLITE_PREFIX.length);
    if (path === "") throw new PortcullisError("E_STORE", "store URL sqlite: needs a file path, e.g. sqlite:./.portcullis/portcullis.db");
    return new SqliteStore(path, options);
  }
  // Say which scheme was refused without echoing the rest: a postgres:// URL may carry a password.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new PortcullisError(
    "E_STORE",
    `unsupported store ${scheme ? `scheme "${scheme}:"` : "URL"}; use sqlite:PATH or sqlite::memory:`,
  );
}
