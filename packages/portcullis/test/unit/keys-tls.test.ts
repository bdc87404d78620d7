/** Files created once in data_dir: concurrent creators agree on one content; key and certificate belong together. */
import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import { loadOrCreateKey, readOrCreateFile } from "../../src/core/keys.js";
import { loadServerTls } from "../../src/core/tls.js";

describe("data_dir files created once", () => {
  it("keeps the first content when several creators race, with mode 0600", () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-keys-"));
    const file = join(dir, "k");
    const results = ["a", "b", "c"].map((v) => readOrCreateFile(file, () => v).toString());
    assert.deepEqual(results, ["a", "a", "a"]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(loadOrCreateKey(dir, "masking.key").length, 32);
    assert.deepEqual(loadOrCreateKey(dir, "masking.key"), loadOrCreateKey(dir, "masking.key"));
  });

  it("gives concurrent gateway starts one matching TLS key and certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-tls-"));
    const config = parseConfig({ gateway: { data_dir: dir }, identity: { dev_issuer: true } }, join(dir, "portcullis.yaml"));
    const [a, b] = await Promise.all([loadServerTls(config), loadServerTls(config)]);
    assert.equal(a.key, b.key);
    assert.equal(a.cert, b.cert);
    const cert = new X509Certificate(a.cert);
    assert.ok(cert.checkPrivateKey(createPrivateKey(a.key)), "the certificate belongs to the key");
    assert.equal(createPublicKey(a.key).export({ format: "pem", type: "spki" }), cert.publicKey.export({ format: "pem", type: "spki" }));
  });
});
