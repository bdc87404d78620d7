/**
 * TLS for agent-facing listeners: the configured cert/key pair, or a self-signed pair generated
 * once into data_dir (so agents can pin it) when none is configured.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { generate } from "selfsigned";
import type { LoadedConfig } from "../config/load.js";
import { PortcullisError } from "../errors.js";

export interface TlsPair { cert: string; key: string; generated: boolean; certPath: string }

export async function loadServerTls(config: LoadedConfig): Promise<TlsPair> {
  const configured = config.gateway.tls;
  if (configured) {
    try {
      const base = config.source.replace(/[^/\\]*$/, "");
      const certPath = configured.cert.startsWith("/") ? configured.cert : join(base, configured.cert);
      const keyPath = configured.key.startsWith("/") ? configured.key : join(base, configured.key);
      return { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8"), generated: false, certPath };
    } catch (err) {
      throw new PortcullisError("E_CONFIG_INVALID", `gateway.tls: cannot read certificate or key (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  const dir = join(config.dataDir, "tls");
  const certPath = join(dir, "gateway.crt");
  const keyPath = join(dir, "gateway.key");
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const notAfter = new Date();
    notAfter.setFullYear(notAfter.getFullYear() + 1);
    const pems = await generate([{ name: "commonName", value: "portcullis" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      notAfterDate: notAfter,
      extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }] }],
    });
    // Written beside and renamed, so a concurrent start never reads half a key.
    writeFileSync(`${keyPath}.tmp`, pems.private, { mode: 0o600 });
    writeFileSync(`${certPath}.tmp`, pems.cert, { mode: 0o644 });
    renameSync(`${keyPath}.tmp`, keyPath);
    renameSync(`${certPath}.tmp`, certPath);
  }
  return { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8"), generated: true, certPath };
}

export function secureContextOf(pair: TlsPair): SecureContext {
  return createSecureContext({ cert: pair.cert, key: pair.key, minVersion: "TLSv1.2" });
}
