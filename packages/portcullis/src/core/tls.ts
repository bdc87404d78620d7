/**
 * TLS for agent-facing listeners: the configured cert/key pair, or a self-signed pair generated
 * once into data_dir (so agents can pin it) when none is configured.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { readOrCreateFile } from "./keys.js";
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
  // Key and certificate live in one file created once, so they always belong together; the
  // certificate is also written on its own for agents to pin.
  const dir = join(config.dataDir, "tls");
  const bundlePath = join(dir, "gateway.pem");
  const certPath = join(dir, "gateway.crt");
  const fresh = existsSync(bundlePath) ? undefined : await generatePair();
  const bundle = readOrCreateFile(bundlePath, () => fresh ?? "").toString("utf8");
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(bundle)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(bundle)?.[0];
  if (!key || !cert) throw new PortcullisError("E_CONFIG_INVALID", `${bundlePath}: not a key and certificate pair`);
  writeFileSync(certPath, cert, { mode: 0o644 });
  return { cert, key, generated: true, certPath };
}

async function generatePair(): Promise<string> {
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 1);
  const pems = await generate([{ name: "commonName", value: "portcullis" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notAfterDate: notAfter,
    extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }] }],
  });
  return `${pems.private.trim()}\n${pems.cert.trim()}\n`;
}

export function secureContextOf(pair: TlsPair): SecureContext {
  return createSecureContext({ cert: pair.cert, key: pair.key, minVersion: "TLSv1.2" });
}
