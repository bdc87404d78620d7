import { generateKeyPairSync, sign, verify, createHash } from "node:crypto";
import { SignJWT, jwtVerify, importJWK, exportJWK, generateKeyPair } from "jose";
const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
const token = await new SignJWT({ groups: ["agents"] }).setProtectedHeader({ alg: "EdDSA" }).setIssuer("i").setAudience("a").setSubject("s").setIssuedAt().setExpirationTime("1h").sign(privateKey);
async function time(name: string, n: number, f: () => unknown) {
  for (let i = 0; i < 200; i++) await f();
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i++) await f();
  const c = process.cpuUsage(c0);
  console.log(name, ((performance.now() - t0) * 1000 / n).toFixed(1), "µs wall", ((c.user + c.system) / n).toFixed(1), "µs cpu");
}
await time("jose jwtVerify EdDSA", 3000, () => jwtVerify(token, publicKey, { issuer: "i", audience: "a", algorithms: ["EdDSA"] }));
const kp = generateKeyPairSync("ed25519");
const data = Buffer.from(token.split(".").slice(0, 2).join("."));
const sig = sign(null, data, kp.privateKey);
await time("node crypto.verify ed25519 (sync)", 3000, () => verify(null, data, kp.publicKey, sig));
await time("sha256 of token (cache key)", 3000, () => createHash("sha256").update(token).digest("hex"));
