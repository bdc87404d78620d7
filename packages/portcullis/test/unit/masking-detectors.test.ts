/**
 * Detectors, through the text masker: per detector true positives, near misses and checksum
 * failures, each run with that detector alone (so the anchors that find candidates are tested
 * too), then the whole set together: overlaps, priority, strategies inside text, and a seeded
 * property test of values embedded in noise. Fixture checksums are verified here independently
 * (BigInt mod 97, a separate Luhn) so a typo in a fixture cannot pass silently.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DETECTOR_NAMES as CONFIG_DETECTOR_NAMES } from "../../src/config/schema.js";
import { DETECTORS, KNOWN_DETECTORS } from "../../src/masking/detectors/index.js";
import { compileTextMasker } from "../../src/masking/text-masker.js";

const KEY = Buffer.from("test-masking-key");
const ALL = [...KNOWN_DETECTORS];

const maskers = new Map<string, ReturnType<typeof compileTextMasker>>();
function masker(names: string[]) {
  const k = names.join(",");
  let m = maskers.get(k);
  if (!m) maskers.set(k, (m = compileTextMasker(names, "redact", KEY)));
  return m;
}

/** The substrings one detector (alone) masks in a text. */
function found(detector: string, text: string): string[] {
  return masker([detector]).scan(text).map((s) => text.slice(s.start, s.end));
}

/** Each value is found, exactly, by the detector alone, bare and inside a sentence. */
function positives(detector: string, values: string[]) {
  for (const v of values) {
    assert.deepEqual(found(detector, v), [v], `${detector} should match ${JSON.stringify(v)} alone`);
    assert.deepEqual(found(detector, `Note: ${v}, thanks.`), [v], `${detector} should match ${JSON.stringify(v)} in a sentence`);
  }
}

/** Nothing in each text is found by the detector. */
function negatives(detector: string, texts: string[]) {
  for (const t of texts) assert.deepEqual(found(detector, t), [], `${detector} should not match in ${JSON.stringify(t)}`);
}

// ---- independent checksums for the fixtures -----------------------------------------------------

function luhn(num: string): boolean {
  const d = num.replace(/\D/g, "").split("").reverse().map(Number);
  return d.reduce((s, x, i) => s + (i % 2 ? (x * 2 > 9 ? x * 2 - 9 : x * 2) : x), 0) % 10 === 0;
}
function mod97(iban: string): boolean {
  const s = iban.replace(/ /g, "");
  const r = (s.slice(4) + s.slice(0, 4)).replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  return BigInt(r) % 97n === 1n;
}
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe("detector registry", () => {
  it("has the detectors the config accepts, each documented with its false-positive behaviour", () => {
    assert.deepEqual([...KNOWN_DETECTORS].sort(), [...CONFIG_DETECTOR_NAMES].sort());
    for (const d of DETECTORS) {
      assert.match(d.description, /False positives/, d.name);
      assert.ok(d.patterns.length > 0 && d.anchors.length > 0, d.name);
    }
  });

  it("rejects unknown detector names and strategies", () => {
    assert.throws(() => compileTextMasker(["email", "passport"], "redact", KEY), /unknown masking detector "passport"/);
    assert.throws(() => compileTextMasker(["email"], "scramble" as never, KEY), /unknown masking strategy/);
  });
});

describe("email", () => {
  it("matches addresses", () => {
    positives("email", ["john.doe@example.com", "john.doe+tag@example.co.uk", "a_b-c%d@sub.mail.example.org", "x@y.io", "J.Smith@Example.COM"]);
    assert.deepEqual(found("email", "<bob@example.net>; mailto:jane@example.com"), ["bob@example.net", "jane@example.com"]);
    assert.deepEqual(found("email", "ends here.alice@example.com."), ["here.alice@example.com"]);
    assert.deepEqual(found("email", "...alice@example.com"), ["alice@example.com"]);
  });
  it("masks the password@host part of URL user info", () => {
    assert.deepEqual(found("email", "postgres://app:s3cret@db.example.com/app"), ["s3cret@db.example.com"]);
  });
  it("near misses", () => {
    negatives("email", ["root@localhost", "user@[10.0.0.1]", "@handle and @ 5pm", "a@b.c", "foo@bar", "john@example.c0m", "user@-bad.com", "x@y"]);
  });
});

describe("credit_card", () => {
  const valid = [
    "4111111111111111", "5555555555554444", "5105105105105100", "378282246310005", "6011111111111117",
    "3530111333300000", "30569309025904", "2223003122003222", "4222222222222", "6200000000000005", "4111111111111111110",
  ];
  it("fixtures pass Luhn", () => {
    for (const v of valid) assert.ok(luhn(v), v);
  });
  it("matches card numbers, contiguous and grouped", () => {
    positives("credit_card", valid);
    positives("credit_card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005", "3056 930902 5904", "4111 1111 1111 1111 110"]);
    assert.deepEqual(found("credit_card", "card 4111 1111 1111 1111 exp 12/27"), ["4111 1111 1111 1111"]);
    assert.deepEqual(found("credit_card", "qty 1234 4111 1111 1111 1111"), ["4111 1111 1111 1111"]);
  });
  it("checksum failures", () => {
    for (const v of ["4111111111111112", "4111 1111 1111 1112", "5555555555554445", "378282246310006"]) {
      assert.ok(!luhn(v), v);
      negatives("credit_card", [v, `card ${v}`]);
    }
  });
  it("near misses: issuer ranges, timestamps, longer runs, decimals, mixed separators", () => {
    assert.ok(luhn("1234567812345670") && luhn("7992739871300"));
    negatives("credit_card", [
      "1234567812345670", // Luhn-valid, no card network starts with 1
      "7992739871300", // nor 7
      "341111111111111111", // Amex prefix at a non-Amex length
      "1700000000000", // a millisecond timestamp
      "order 94111111111111111111", // part of a longer digit run
      "0.4111111111111111", "4111111111111111.25", // decimals
      "4111 1111-1111 1111", "4111.1111.1111.1111", // mixed / other separators
      "411111111111", // 12 digits
      "ticket 933b6001-3400-9131-7554-046cff9ea3e0", "sha 4111111111111111abc", // inside hex tokens / UUIDs
    ]);
  });
});

describe("us_ssn", () => {
  it("matches grouped SSNs and labelled 9-digit runs", () => {
    positives("us_ssn", ["123-45-6789", "123 45 6789", "078-05-1120"]);
    assert.deepEqual(found("us_ssn", "SSN: 123456789"), ["123456789"]);
    assert.deepEqual(found("us_ssn", "ssn=123456789; ssn#234567890"), ["123456789", "234567890"]);
    assert.deepEqual(found("us_ssn", '{"ssn": "123456789"}'), ["123456789"]);
    assert.deepEqual(found("us_ssn", "customer_ssn:123456789"), ["123456789"]);
    assert.deepEqual(found("us_ssn", "Social Security Number: 123456789"), ["123456789"]);
  });
  it("never-issued numbers are rejected", () => {
    negatives("us_ssn", ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000", "SSN 000123456", "SSN: 123450000"]);
  });
  it("near misses: unlabelled runs, other groupings, mixed separators, distant labels", () => {
    negatives("us_ssn", [
      "123456789", "order 123456789 shipped", "123-456-7890", "1123-45-6789", "123-45-67890", "123-45 6789",
      "123.45.6789", "the SSN field holds 123456789", "12-345-6789",
    ]);
  });
});

describe("iban", () => {
  const valid = [
    "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432",
    "FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300", "NO93 8601 1117 947", "KZ86 125K ZT50 0410 0100",
    "MT84MALT011000012345MTLCAST001S", "BE68 5390 0754 7034", "CH93 0076 2011 6238 5295 7",
  ];
  it("fixtures pass mod 97", () => {
    for (const v of valid) assert.ok(mod97(v), v);
  });
  it("matches IBANs, compact and printed", () => {
    positives("iban", valid);
    assert.deepEqual(found("iban", "IBAN: DE89 3704 0044 0532 0130 00 BIC: COBADEFFXXX"), ["DE89 3704 0044 0532 0130 00"]);
  });
  it("checksum failures", () => {
    for (const v of ["DE88 3704 0044 0532 0130 00", "GB82WEST12345698765433", "NL91ABNA0417164301"]) {
      assert.ok(!mod97(v), v);
      negatives("iban", [v]);
    }
  });
  it("near misses: wrong length for the country, unknown country, lower case", () => {
    negatives("iban", ["DE89 3704 0044 0532 0130 0", "DE8937040044053201300000", "ZZ89370400440532013000", "de89370400440532013000", "XDE89370400440532013000"]);
  });
});

describe("phone", () => {
  it("matches international, North American and trunk-0 national numbers", () => {
    positives("phone", [
      "+14155552671", "+1 (555) 123-4567", "+44 20 7946 0958", "+44 (0)20 7946 0958", "+33 1 23 45 67 89", "+49 30 1234567",
      "(555) 123-4567", "(555)123-4567", "555-123-4567", "555.123.4567", "1-800-555-1234", "1 (800) 555-1234",
      "020 7946 0958", "06 12 34 56 78", "030-1234-5678", "07700 900123",
    ]);
  });
  it("near misses: dates, times, versions, plain integers, offsets, arithmetic", () => {
    negatives("phone", [
      "2024-03-12", "12.03.2024", "03/12/2024", "2024-03-12 14:22:05+00", "01.02.2023", "at 12:30:45", "+05:30", "UTC+1",
      "1.2.3", "10.0.19041.1", "v2.10.3", "12345678901", "id 5551234567", "555 123 4567", "3+4=7", "+1 555", "order 555-1234",
      "2023", "ISBN 978-3-16-148410-0", "zip 02134-1234", "$1,234,567.89",
    ]);
  });
});

describe("ipv4", () => {
  it("matches dotted quads", () => {
    positives("ipv4", ["10.0.0.1", "255.255.255.255", "192.168.1.20", "8.8.8.8", "0.0.0.0"]);
    assert.deepEqual(found("ipv4", "host 192.168.1.20:5432 net 10.0.0.0/8."), ["192.168.1.20", "10.0.0.0"]);
  });
  it("near misses: out of range, too few or many parts, prefixed versions, leading zeros", () => {
    negatives("ipv4", ["256.1.1.1", "1.2.3", "1.3.6.1.4.1", "v1.2.3.4", "01.02.03.04", "1.2.3.4.5", "192.168.1.1000", "1234.1.1.1"]);
  });
});

describe("ipv6", () => {
  it("matches full, compressed, embedded-IPv4 and zoned addresses", () => {
    positives("ipv6", [
      "2001:db8::1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334", "fe80::1%eth0",
      "::ffff:192.0.2.128", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:7:8",
    ]);
    assert.deepEqual(found("ipv6", "connect to [2001:db8::1]:8080 now"), ["2001:db8::1"]);
    assert.deepEqual(found("ipv6", "ip:2001:db8::5 up"), ["2001:db8::5"]);
  });
  it("near misses: bare ::, loopback shorthand, code paths, times, MAC addresses", () => {
    negatives("ipv6", ["::", "::1", "std::vector<int>", "dead::beef", "a::b", "at 12:30:45", "00:1a:2b:3c:4d:5e", "Foo::Bar::baz()", "fe80::"]);
  });
});

describe("jwt", () => {
  const hs256 =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  it("matches signed, unsigned and encrypted tokens", () => {
    const unsigned = `${b64url({ alg: "none" })}.${b64url({ sub: "x" })}.`;
    const jwe = `${b64url({ alg: "dir", enc: "A256GCM" })}..a1b2c3d4e5f6.Y2lwaGVydGV4dA.dGFnMTIzNDU2`;
    positives("jwt", [hs256, jwe]);
    assert.deepEqual(found("jwt", `Authorization: Bearer ${hs256}`), [hs256]);
    assert.deepEqual(found("jwt", `token=${unsigned} rest`), [unsigned]);
  });
  it("near misses: header not JSON or without alg, no segments, embedded", () => {
    const noAlg = `${b64url({ typ: "JWT" })}.${b64url({ sub: "x" })}.sig`;
    negatives("jwt", [noAlg, "eyJzb21ldGhpbmc.eyJ4Ijp9.c2ln", "eyJhbGciOiJIUzI1NiJ9", `x${hs256}`, "eyJ.eyJ.x"]);
  });
});

describe("aws_key", () => {
  const id = "AKIAIOSFODNN7EXAMPLE";
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  it("matches access key ids", () => {
    positives("aws_key", [id, "ASIAY34FZKBOKMUTVV7A"]);
  });
  it("matches secret keys after a label or next to a key id, masking only the key material", () => {
    for (const text of [
      `aws_secret_access_key = ${secret}`, `AWS_SECRET_ACCESS_KEY=${secret}`, `"SecretAccessKey": "${secret}"`,
      `aws-secret-key: '${secret}'`, `secretAccessKey=${secret}`,
    ]) assert.deepEqual(found("aws_key", text), [secret], text);
    assert.deepEqual(found("aws_key", `${id},${secret}`), [id, secret]);
    assert.deepEqual(found("aws_key", `${id}\t${secret}\n`), [id, secret]);
    assert.deepEqual(masker(["aws_key"]).mask(`key ${id}, ${secret}.`), "key [REDACTED:aws_key], [REDACTED:aws_key].");
  });
  it("near misses: bare secrets, principal ids, wrong lengths, embedded ids, plain labels", () => {
    negatives("aws_key", [
      secret, `the hash is ${secret}`, "AIDAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPL", "XAKIAIOSFODNN7EXAMPLE", `${id}X`,
      `aws_secret_access_key = ${secret.slice(1)}`, `secret: ${secret}`, `aws_secret_access_key = ${secret}X`,
    ]);
  });
});

describe("private_key", () => {
  const body = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naCAzaQ8cxXH7GjK/yrlJT9rNzaCHGLVyQ2Hf3w==";
  it("matches PEM and PGP private key blocks", () => {
    const rsa = `-----BEGIN RSA PRIVATE KEY-----\n${body}\n-----END RSA PRIVATE KEY-----`;
    const pkcs8 = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----`;
    const ssh = `-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----`;
    const pgp = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${body}\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----`;
    const escaped = `-----BEGIN EC PRIVATE KEY-----\\n${body.replace("\n", "\\n")}\\n-----END EC PRIVATE KEY-----`;
    positives("private_key", [rsa, pkcs8, ssh, pgp, escaped]);
  });
  it("masks a truncated block through its body", () => {
    const text = `key: -----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n${body}`;
    assert.deepEqual(found("private_key", text), [text.slice(5)]);
  });
  it("near misses: public keys and certificates", () => {
    negatives("private_key", [
      `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----`,
      `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----`,
      "-----BEGIN PRIVATE-----",
    ]);
  });
});

describe("api_token", () => {
  const a36 = "0123456789abcdefghijABCDEFGHIJ012345";
  it("matches tokens with known prefixes", () => {
    positives("api_token", [
      `ghp_${a36}`, `gho_${a36}`, `ghs_${a36}`, `github_pat_11ABCDEFG0${"a1B2c3D4e5".repeat(7)}12`,
      "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxp-1234567890-abcdef12",
      "sk_live_51H8abcDEF0123456789xyzABC", "rk_live_51H8abcDEF0123456789xyzABC", "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
      "sk-proj-abcDEF0123456789abcdefXYZ_-1234", "sk-ant-api03-AbCdEf0123456789aBcDeF_gh-IJ", "sk-AbCdEf0123456789AbCdEf0123456789AbCdEf0123456789",
      `AIza${"SyA1b2C3d4E5f6G7h8I9j0K_l-MnOpQrStU".slice(0, 35)}`, "glpat-AbCd1234EfGh5678IjKl", `npm_${a36}`,
      `SG.${"aB3dEfGhIjKlMnOpQrStUv"}.${"0123456789abcdefghijABCDEFGHIJ0123456789_-x"}`, `SK${"0123456789abcdef".repeat(2)}`,
      `hf_${"AbCdEf0123456789AbCdEf0123456789Ab"}`,
    ]);
  });
  it("near misses: too short, slugs, no digits, publishable keys, embedded", () => {
    negatives("api_token", [
      `ghp_${a36.slice(1)}`, "sk-learn-tutorial-for-beginners-2024-edition", "sk-abcdefghijklmnopqrstuvwxyz", "xoxb-123",
      `AIza${"SyA1b2C3d4E5f6G7h8I9j0K_l-MnOpQrSt"}`, `npm_${"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}`, "pk_live_51H8abcDEF0123456789xyzABC",
      `my_ghp_${a36}`, `xghp_${a36}`, `SK${"0123456789abcdef".repeat(2)}0`, "SKU-12345",
    ]);
  });
});

describe("text masker", () => {
  const all = masker(ALL);

  it("returns undefined when nothing matched, so callers forward the original bytes", () => {
    for (const t of ["", "ok", "Alice Johnson", "1234 Elm Street, Apt 5B, Springfield, IL 62704", "refund of $1,234.56 on 2024-03-12 14:22:05+00", "ticket 3f2a9c1e-1b2c-4d5e-8f90-1234567890ab v1.2.3"]) {
      assert.equal(all.mask(t), undefined, t);
    }
  });

  it("masks every detector's values in one text", () => {
    const text =
      "Alice (alice@example.com, +1 (555) 123-4567) paid with 4111 1111 1111 1111; SSN 123-45-6789; IBAN DE89370400440532013000; " +
      "from 10.0.0.1 and 2001:db8::1; token ghp_0123456789abcdefghijABCDEFGHIJ012345; key AKIAIOSFODNN7EXAMPLE.";
    assert.equal(
      all.mask(text),
      "Alice ([REDACTED:email], [REDACTED:phone]) paid with [REDACTED:credit_card]; SSN [REDACTED:us_ssn]; IBAN [REDACTED:iban]; " +
        "from [REDACTED:ipv4] and [REDACTED:ipv6]; token [REDACTED:api_token]; key [REDACTED:aws_key].",
    );
  });

  it("applies the strategy to each match; null removes it", () => {
    const text = "mail bob@example.com or call 555-123-4567";
    assert.equal(compileTextMasker(ALL, "partial", KEY).mask(text), "mail ***********.com or call ********4567");
    const hashed = compileTextMasker(ALL, "hash", KEY).mask(text)!;
    assert.match(hashed, /^mail hash:[0-9a-f]{16} or call hash:[0-9a-f]{16}$/);
    assert.equal(compileTextMasker(ALL, "hash", KEY).mask("bob@example.com")!, hashed.slice(5, 26));
    assert.equal(compileTextMasker(ALL, "null", KEY).mask(text), "mail  or call ");
  });

  it("only runs the configured detectors", () => {
    const text = "bob@example.com 555-123-4567";
    assert.equal(masker(["phone"]).mask(text), "bob@example.com [REDACTED:phone]");
    assert.equal(masker(["email"]).mask(text), "[REDACTED:email] 555-123-4567");
    assert.equal(compileTextMasker([], "redact", KEY).mask(text), undefined);
  });

  it("merges overlapping matches of different detectors into one span (longest first wins)", () => {
    // A card number as an email local part: both match from the same start; the email is longer.
    assert.deepEqual(all.scan("4111111111111111@example.com"), [{ detector: "email", start: 0, end: 28 }]);
    // An SMS gateway address: the phone number is the local part.
    assert.equal(all.mask("to 555-123-4567@vtext.com"), "to [REDACTED:email]");
  });

  it("keeps offsets right around non-ASCII text", () => {
    assert.equal(all.mask("Zoë 👋 zoë@example.com → 555-123-4567 ✓"), "Zoë 👋 [REDACTED:email] → [REDACTED:phone] ✓");
  });

  it("finds values embedded in noise (seeded property test)", () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rnd() * 10)).join("");
    const card = () => {
      const body = "4" + digits(14);
      for (let c = 0; c <= 9; c++) if (luhn(body + c)) return body + c;
      throw new Error("unreachable");
    };
    const iban = () => {
      const bban = digits(18);
      const rem = BigInt(`${bban}131400`) % 97n; // "DE" = 13 14, check digits 00
      return `DE${String(98n - rem).padStart(2, "0")}${bban}`;
    };
    const ssn = () => `${100 + Math.floor(rnd() * 500)}-${10 + Math.floor(rnd() * 89)}-${1000 + Math.floor(rnd() * 8999)}`;
    const noise = ["Order #48213 shipped 2024-03-12.", "Call me at noon, ok?", "1234 Elm St.", "v1.2.3 (build 5)", "$12.50", "ID 3f2a9c1e-1b2c"];
    for (let i = 0; i < 300; i++) {
      const values: [string, string][] = [["credit_card", card()], ["iban", iban()], ["us_ssn", ssn()]];
      const [type, value] = values[i % 3]!;
      const text = `${noise[i % noise.length]} ${value} ${noise[(i + 1) % noise.length]}`;
      assert.ok(mod97(values[1]![1]) && luhn(values[0]![1]));
      assert.deepEqual(all.scan(text).map((s) => [s.detector, text.slice(s.start, s.end)]), [[type, value]], text);
    }
  });

  it("stays linear on hostile input", () => {
    const long = ["9".repeat(20000), "a@".repeat(10000), "-----BEGIN RSA PRIVATE KEY----- ".repeat(500), ":".repeat(20000), "eyJ".repeat(10000), "1.".repeat(10000)];
    for (const t of long) {
      const t0 = process.hrtime.bigint();
      all.mask(t);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.ok(ms < 500, `${t.slice(0, 12)}… took ${ms.toFixed(0)} ms`);
    }
  });
});
