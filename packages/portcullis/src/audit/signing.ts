/**
 * The checkpoint signing key: Ed25519, created once in data_dir (audit-signing.key, mode 0600).
 * Its public key is what a responder pins (`portcullis audit public-key`): someone who can rewrite
 * the store and read data_dir could re-sign, so offline verification should use a copy of the
 * public key kept elsewhere, together with the anchored checkpoints.
 */
import { type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { CheckpointRow } from "../store/store.js";
import { readOrCreateFile } from "../core/keys.js";
import { canonicalJson } from "./canonical.js";

export const SIGNING_KEY_FILE = "audit-signing.key";

/** First 16 hex of SHA-256 over the DER public key: names the key in each checkpoint. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);
}

/** The bytes a checkpoint signature covers. */
export function checkpointPayload(cp: Omit<CheckpointRow, "signature">): Buffer {
  return Buffer.from(canonicalJson({ seq: cp.seq, hash: cp.hash, at: cp.at, key_id: cp.keyId }));
}

export class CheckpointSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
  }

  static open(dataDir: string): CheckpointSigner {
    const pem = readOrCreateFile(join(dataDir, SIGNING_KEY_FILE), () =>
      generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
    return new CheckpointSigner(createPrivateKey(pem));
  }

  sign(seq: number, hash: string, at = Date.now()): CheckpointRow {
    const unsigned = { seq, hash, at, keyId: this.keyId };
    return { ...unsigned, signature: sign(null, checkpointPayload(unsigned), this.privateKey).toString("base64") };
  }

  publicKeyPem(): string {
    return this.publicKey.export({ type: "spki", format: "pem" }).toString();
  }
}

/** The public key of data_dir's signing key, if one exists (offline verification). */
export function publicKeyFromDataDir(dataDir: string): KeyObject | undefined {
  try {
    return createPublicKey(createPrivateKey(readFileSync(join(dataDir, SIGNING_KEY_FILE))));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export function checkpointSignatureValid(cp: CheckpointRow, publicKey: KeyObject): boolean {
  try {
    return verify(null, checkpointPayload(cp), publicKey, Buffer.from(cp.signature, "base64"));
  } catch {
    return false;
  }
}
