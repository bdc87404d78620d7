/**
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677) for the gateway's login to a target.
 * The target's signature is verified, so a gateway is never talked into continuing with an
 * impostor that merely accepts any proof. Salted passwords are cached per (password, salt,
 * iterations): the role's salt does not change between logins, and PBKDF2 is the dominant
 * cost of a connection storm.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { PortcullisError } from "../../errors.js";

const pbkdf2Async = promisify(pbkdf2);
const MAX_ITERATIONS = 1_000_000;
const saltedCache = new Map<string, Buffer>();

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest();
const fail = (why: string) => new PortcullisError("E_UPSTREAM_AUTH", `SCRAM: ${why}`);

function parseAttributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq === 1) attrs.set(part[0]!, part.slice(2));
  }
  return attrs;
}

export class ScramClient {
  readonly mechanism = "SCRAM-SHA-256";
  private readonly clientNonce = randomBytes(18).toString("base64");
  private readonly clientFirstBare = `n=,r=${this.clientNonce}`;
  private expectedServerSignature?: Buffer;
  /** True once the target's server signature checked out. */
  verified = false;

  constructor(private readonly password: string) {}

  /** The client-first-message: no channel binding ("n,,"); PostgreSQL ignores the SCRAM user name. */
  initialResponse(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  /** Answers server-first-message with client-final-message. */
  async respond(serverFirst: Buffer): Promise<Buffer> {
    const text = serverFirst.toString("utf8");
    const attrs = parseAttributes(text);
    const nonce = attrs.get("r");
    const salt = attrs.get("s");
    const iterations = Number(attrs.get("i"));
    if (!nonce || !salt || !Number.isInteger(iterations)) throw fail("malformed server-first-message");
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) throw fail("server nonce does not extend the client nonce");
    if (iterations < 1 || iterations > MAX_ITERATIONS) throw fail("unreasonable iteration count");

    const salted = await this.saltedPassword(salt, iterations);
    const clientFinalNoProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${clientFinalNoProof}`;
    const clientKey = hmac(salted, "Client Key");
    const signature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.expectedServerSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return Buffer.from(`${clientFinalNoProof},p=${proof.toString("base64")}`);
  }

  /** Checks server-final-message; throws when the target cannot prove it knows the password. */
  verifyFinal(serverFinal: Buffer): void {
    const attrs = parseAttributes(serverFinal.toString("utf8"));
    if (attrs.has("e")) throw fail(`server error ${attrs.get("e")}`);
    const v = attrs.get("v");
    if (!v || !this.expectedServerSignature) throw fail("malformed server-final-message");
    const got = Buffer.from(v, "base64");
    if (got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw fail("server signature mismatch");
    }
    this.verified = true;
  }

  private async saltedPassword(salt: string, iterations: number): Promise<Buffer> {
    // Keyed by a digest so the cache never holds the password itself as a key.
    const key = createHash("sha256").update(`${this.password}\0${salt}\0${iterations}`).digest("base64");
    const hit = saltedCache.get(key);
    if (hit) return hit;
    // SASLprep is reduced to NFKC normalisation; passwords outside that are rare and libpq is lenient too.
    const salted = await pbkdf2Async(this.password.normalize("NFKC"), Buffer.from(salt, "base64"), iterations, 32, "sha256");
    if (saltedCache.size > 256) saltedCache.clear();
    saltedCache.set(key, salted);
    return salted;
  }
}

/** MD5 password answer: "md5" + md5(md5(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash("md5").update(password + user).digest("hex");
  return "md5" + createHash("md5").update(Buffer.concat([Buffer.from(inner), salt])).digest("hex");
}
