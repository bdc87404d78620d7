/** The store named in a config file, for commands that read it directly (they work with the gateway stopped). */
import { loadConfig, type LoadedConfig } from "../config/load.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";

export function openConfiguredStore(configFile: string): { config: LoadedConfig; store: Store } {
  const config = loadConfig(configFile);
  return { config, store: openStore(config.storeUrl, { mustExist: true }) };
}

/** Runs `fn` with the store open, and closes it however `fn` ends. */
export async function withStore<T>(configFile: string, fn: (store: Store, config: LoadedConfig) => T | Promise<T>): Promise<T> {
  const { config, store } = openConfiguredStore(configFile);
  try {
    return await fn(store, config);
  } finally {
    store.close();
  }
}
