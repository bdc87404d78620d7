/**
 * The built-in dev issuer: signs tokens for local use so the gateway works without an identity
 * provider. Its Ed25519 key lives in `<data_dir>/dev-issuer.json` so tokens survive restarts and
 * every process sharing the data dir (gateway, CLI) signs and verifies with the same key.
 */
import { randomUUID } from "node:crypto";
import { chmod, link, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from "jose";
import { PortcullisError } from "../errors.js";

export const DEV_ISSUER_ISS = "urn:portcullis:dev-issuer";
export const DEV_ISSUER_AUDIENCE = "portcullis";
export const DEV_ISSUER_ALG = "EdDSA";
export const DEV_ISSUER_KEY_FILE = "dev-issuer.json";

export interface IssueOptions {
  sub: string;
  groups?: string[];
  /** Lifetime in seconds; 600 when omitted. */
  ttlSeconds?: number;
  /** Extra claims (e.g. run context). Cannot override iss, aud, sub, groups or the timestamps. */
  claims?: Record<string, unknown>;
}

export class DevIssuer {
  readonly iss = DEV_ISSUER_ISS;
  readonly audience = DEV_ISSUER_AUDIENCE;
  readonly alg = DEV_ISSUER_ALG;

  private constructor(
    readonly kid: string,
    readonly publicJwk: JWK,
    readonly publicKey: CryptoKey,
    private readonly privateKey: CryptoKey,
  ) {}

  /** Loads the key from `<dataDir>/dev-issuer.json`, creating it on first use. */
  static async open(dataDir: string): Promise<DevIssuer> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const file = join(dataDir, DEV_ISSUER_KEY_FILE);
    const jwk = (await readKey(file)) ?? (await createKey(file));
    const { d: _private, ...publicJwk } = jwk;
    const [privateKey, publicKey] = await Promise.all([importJWK(jwk, DEV_ISSUER_ALG), importJWK(publicJwk, DEV_ISSUER_ALG)]);
    return new DevIssuer(jwk.kid!, publicJwk, publicKey as CryptoKey, privateKey as CryptoKey);
  }

  async issue(opts: IssueOptions): Promise<string> {
    const { sub, groups = [], ttlSeconds = 600, claims = {} } = opts;
    if (typeof sub !== "string" || sub.length === 0) throw new TypeError("dev issuer: sub must be a non-empty string");
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new TypeError("dev issuer: ttlSeconds must be a positive number");
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string")) throw new TypeError("dev issuer: groups must be strings");
    const now = Math.floor(Date.now() / 1000);
    // The setters run after the payload is built, so `claims` cannot replace registered claims.
    return new SignJWT({ ...claims, groups: [...groups] })
      .setProtectedHeader({ alg: DEV_ISSUER_ALG, kid: this.kid, typ: "JWT" })
      .setIssuer(this.iss)
      .setAudience(this.audience)
      .setSubject(sub)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + Math.max(1, Math.round(ttlSeconds)))
      .setJti(randomUUID())
      .sign(this.privateKey);
  }
}

async function readKey(file: string): Promise<JWK | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new PortcullisError("E_CONFIG_INVALID", `${file}: cannot read the dev issuer key (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    jwk = undefined;
  }
  if (!isEd25519PrivateJwk(jwk)) {
    throw new PortcullisError("E_CONFIG_INVALID", `${file}: not a dev issuer key (delete the file to create a new one)`);
  }
  await tightenMode(file);
  return jwk;
}

/**
 * Writes a fresh key next to the final name, then hard-links it into place. link() fails when
 * the name already exists, so when two processes race only the first key lands and both read
 * that one back; a rename would silently replace a key another process already uses.
 */
async function createKey(file: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(DEV_ISSUER_ALG, { crv: "Ed25519", extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = DEV_ISSUER_ALG;
  jwk.use = "sig";
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: "wx" });
  try {
    await link(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Filesystems without hard links: fall back to rename, then read back what won.
    if (code !== "EEXIST") await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  const stored = await readKey(file);
  if (!stored) throw new PortcullisError("E_CONFIG_INVALID", `${file}: the dev issuer key vanished while being created`);
  return stored;
}

/** The private key must not be readable by other users, even if the file was copied in loosely. */
async function tightenMode(file: string): Promise<void> {
  if (process.platform === "win32") return;
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) await chmod(file, 0o600);
}

function isEd25519PrivateJwk(value: unknown): value is JWK {
  if (value === null || typeof value !== "object") return false;
  const jwk = value as Record<string, unknown>;
  return jwk.kty === "OKP" && jwk.crv === "Ed25519" && typeof jwk.x === "string" && typeof jwk.d === "string" && typeof jwk.kid === "string" && jwk.kid.length > 0;
}
