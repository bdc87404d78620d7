/** Which connection an authenticated principal may open: protocol-neutral, decided once here. */
import type { ConnectionConfig } from "../config/schema.js";
import type { LoadedConfig } from "../config/load.js";
import { PortcullisError } from "../errors.js";
import { memberOf, type Principal } from "../identity/principal.js";

/**
 * Resolves a connection for a principal. An unknown connection and a forbidden one get the same
 * error, so that a token cannot be used to enumerate what the gateway fronts.
 */
export function authorizeConnection(config: LoadedConfig, principal: Principal, name: string, type: ConnectionConfig["type"]): ConnectionConfig {
  const conn = config.connections.find((c) => c.name === name && c.type === type);
  if (!conn || !memberOf(principal, conn.access)) {
    throw new PortcullisError("E_ACCESS_DENIED", `no ${type} connection "${name}", or no access to it`);
  }
  return conn;
}

export function isAdmin(config: LoadedConfig, principal: Principal): boolean {
  return memberOf(principal, config.identity.admins);
}
