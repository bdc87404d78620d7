/**
 * The PostgreSQL codec over plain Buffers: framing, the startup phase, and the messages the
 * gateway decodes or produces itself. Nothing here opens a socket.
 */
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { PortcullisError, isPortcullisError } from "../../src/errors.js";
import { type Frame, Framer, takeStartupPacket } from "../../src/protocols/postgres/framer.js";
import {
  AUTH, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_STARTUP_PACKET, MSG, PROTOCOL_3_0, SSL_REQUEST_CODE,
  decodeAuthentication, decodeBackendKeyData, decodeErrorFields, decodeParameterStatus, decodePassword,
  decodeStartupPacket, encode, pgError,
} from "../../src/protocols/postgres/messages.js";
import { prng } from "../support/prng.js";

// ------------------------------------------------------------------ helpers

const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

/** A typed message with the given body. */
function typed(type: string | number, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  const t = typeof type === "string" ? type.charCodeAt(0) : type;
  return Buffer.concat([Buffer.from([t]), int32(4 + b.length), b]);
}

/** A typed message header claiming `len` (the int32 that counts itself). */
const header = (type: string, len: number) => Buffer.concat([Buffer.from(type), int32(len)]);

/** An untyped startup-phase packet: int32 length + int32 code + body. */
function startupPacket(code: number, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return Buffer.concat([int32(8 + b.length), int32(code), b]);
}

/** Asserts `fn` throws a PortcullisError with `code` (and, optionally, a message matching `re`). */
function assertPortcullis(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isPortcullisError(err), `expected a PortcullisError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (re) assert.match(err.message, re);
    return true;
  });
}

/** One frame out of a whole encoded message (and nothing else). */
function frameOf(buf: Buffer): Frame {
  const frames = new Framer(1 << 30).push(buf);
  assert.equal(frames.length, 1);
  return frames[0]!;
}


function randomBytesFrom(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

// A handful of messages used throughout: Q, Sync (empty body), a Parse, a large-ish DataRow-like message.
const SAMPLE = [
  typed("Q", "select 1\0"),
  typed("S"),
  typed("P", "stmt\0select $1::int\0\0\0"),
  typed("D", Buffer.alloc(300, 7)),
  typed("X"),
];
const SAMPLE_STREAM = Buffer.concat(SAMPLE);

const framesEqual = (frames: Frame[], expected: Buffer[]) => {
  assert.equal(frames.length, expected.length);
  frames.forEach((f, i) => {
    assert.equal(f.type, expected[i]![0]);
    assert.deepEqual(f.raw, expected[i]);
  });
};

// ------------------------------------------------------------------ Framer

describe("Framer", () => {
  it("returns a whole message that arrives in one chunk, header included, without copying", () => {
    const framer = new Framer(1024);
    const msg = typed("Q", "select 1\0");
    const frames = framer.push(msg);
    framesEqual(frames, [msg]);
    assert.equal(frames[0]!.type, MSG.Query);
    // A message contained in its chunk is a view of that chunk, not a copy.
    assert.equal(frames[0]!.raw.buffer, msg.buffer);
    assert.equal(framer.buffered, 0);
  });

  it("accepts a message whose length is exactly 4 (empty body)", () => {
    const framer = new Framer(1024);
    framesEqual(framer.push(typed("S")), [typed("S")]);
  });

  it("returns many messages that arrive in one chunk, in order", () => {
    const framer = new Framer(1024);
    framesEqual(framer.push(SAMPLE_STREAM), SAMPLE);
    assert.equal(framer.buffered, 0);
  });

  it("yields identical frames when the stream is split at every possible byte boundary", () => {
    for (let cut = 0; cut <= SAMPLE_STREAM.length; cut++) {
      const framer = new Framer(1024);
      const frames = [...framer.push(SAMPLE_STREAM.subarray(0, cut)), ...framer.push(SAMPLE_STREAM.subarray(cut))];
      framesEqual(frames, SAMPLE);
      assert.equal(framer.buffered, 0, `cut at ${cut}`);
    }
  });

  it("yields identical frames when the stream arrives one byte at a time, or split at two boundaries", () => {
    const framer = new Framer(1024);
    const frames: Frame[] = [];
    for (let i = 0; i < SAMPLE_STREAM.length; i++) {
      frames.push(...framer.push(SAMPLE_STREAM.subarray(i, i + 1)));
    }
    framesEqual(frames, SAMPLE);

    // Two cuts (quadratic in the stream size, so on the first messages only).
    const small = Buffer.concat(SAMPLE.slice(0, 3));
    for (let a = 0; a <= small.length; a++) {
      for (let b = a; b <= small.length; b++) {
        const f = new Framer(1024);
        const got = [...f.push(small.subarray(0, a)), ...f.push(small.subarray(a, b)), ...f.push(small.subarray(b))];
        framesEqual(got, SAMPLE.slice(0, 3));
      }
    }
  });

  it("does not retain the chunk a trailing partial message came from", () => {
    const framer = new Framer(1024);
    const chunk = Buffer.concat([typed("Q", "select 1\0"), header("Q", 100)]);
    framer.push(chunk);
    assert.equal(framer.buffered, 5);
    chunk.fill(0); // if the framer kept a view, the pending header would now be zeros
    const rest = Buffer.alloc(96, 0x61);
    const frames = framer.push(rest);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.type, MSG.Query);
    assert.equal(frames[0]!.raw.readInt32BE(1), 100);
  });

  it("assembles a 10 MB message from 64 KB chunks into one frame with a single concatenation", (t) => {
    const size = 10 * 1024 * 1024;
    const body = Buffer.alloc(size - 5);
    for (let i = 0; i < body.length; i += 4096) body[i] = i & 0xff;
    const msg = Buffer.concat([header("d", size - 1), body]);
    const next = typed("S");
    const stream = Buffer.concat([msg, next]);

    const concat = mock.method(Buffer, "concat");
    t.after(() => concat.mock.restore());
    const framer = new Framer(16 * 1024 * 1024);
    const frames: Frame[] = [];
    const chunk = 64 * 1024;
    let emptyPushes = 0;
    for (let off = 0; off < stream.length; off += chunk) {
      const got = framer.push(stream.subarray(off, off + chunk));
      if (got.length === 0) emptyPushes++;
      frames.push(...got);
    }
    concat.mock.restore();

    assert.equal(frames.length, 2);
    assert.equal(frames[0]!.raw.length, size);
    assert.ok(frames[0]!.raw.equals(msg));
    assert.ok(frames[1]!.raw.equals(next));
    // Every push but the one completing the 10 MB message and the one carrying the Sync returns nothing.
    assert.equal(emptyPushes, Math.ceil(stream.length / chunk) - 2);
    // Linear: the body is copied once, when it is whole, not once per chunk.
    assert.equal(concat.mock.callCount(), 1, "Buffer.concat calls");
    const copied = concat.mock.calls.reduce((n, c) => n + (c.result as Buffer).length, 0);
    assert.ok(copied <= stream.length, `copied ${copied} bytes for a ${stream.length}-byte stream`);
  });

  it("stays linear when even the 5-byte header of a large message is split", (t) => {
    const size = 4 * 1024 * 1024;
    const msg = Buffer.concat([header("d", size - 1), Buffer.alloc(size - 5, 1)]);
    const concat = mock.method(Buffer, "concat");
    t.after(() => concat.mock.restore());
    const framer = new Framer(16 * 1024 * 1024);
    const frames: Frame[] = [];
    frames.push(...framer.push(msg.subarray(0, 3)));
    for (let off = 3; off < msg.length; off += 64 * 1024) frames.push(...framer.push(msg.subarray(off, Math.min(msg.length, off + 64 * 1024))));
    concat.mock.restore();
    assert.equal(frames.length, 1);
    assert.ok(frames[0]!.raw.equals(msg));
    // Once to learn the header, once when whole.
    assert.ok(concat.mock.callCount() <= 2, `Buffer.concat called ${concat.mock.callCount()} times`);
    const copied = concat.mock.calls.reduce((n, c) => n + (c.result as Buffer).length, 0);
    assert.ok(copied <= 2 * msg.length, `copied ${copied} bytes`);
  });

  it("throws E_PROTOCOL for a length below 4", () => {
    for (const len of [0, 1, 3, -1, -0x80000000]) {
      assertPortcullis(() => new Framer(1024).push(header("Q", len)), "E_PROTOCOL", /invalid message length/);
    }
    // Also when the bad header follows good messages in the same chunk.
    assertPortcullis(() => new Framer(1024).push(Buffer.concat([typed("S"), header("Q", 2)])), "E_PROTOCOL");
  });

  it("throws E_MESSAGE_TOO_LARGE on the header, before buffering any of the body", () => {
    const framer = new Framer(1024);
    assertPortcullis(() => framer.push(header("Q", 0x7fffffff)), "E_MESSAGE_TOO_LARGE", /exceeds the limit of 1024/);
    assert.equal(framer.buffered, 0);

    // Header split across chunks: refused as soon as the length is readable.
    const split = new Framer(1024);
    assert.deepEqual(split.push(Buffer.from([0x51, 0x7f, 0xff])), []);
    assertPortcullis(() => split.push(Buffer.from([0xff, 0xff])), "E_MESSAGE_TOO_LARGE");
    assert.equal(split.buffered, 0);

    // Header after a whole message in the same chunk.
    assertPortcullis(() => new Framer(1024).push(Buffer.concat([typed("S"), header("Q", 5000)])), "E_MESSAGE_TOO_LARGE");
  });

  it("counts the type byte against the limit: a message of exactly maxMessageSize bytes passes", () => {
    const max = 100;
    const fits = typed("Q", Buffer.alloc(max - 5));
    assert.equal(fits.length, max);
    assert.equal(new Framer(max).push(fits).length, 1);
    assertPortcullis(() => new Framer(max).push(typed("Q", Buffer.alloc(max - 4))), "E_MESSAGE_TOO_LARGE");
  });
});

// ------------------------------------------------------------------ startup phase

describe("takeStartupPacket", () => {
  const packet = encode.startup({ user: "agent", database: "app" });

  it("waits for the length, then for the whole packet", () => {
    assert.equal(takeStartupPacket(Buffer.alloc(0), MAX_STARTUP_PACKET), undefined);
    assert.equal(takeStartupPacket(packet.subarray(0, 3), MAX_STARTUP_PACKET), undefined);
    assert.equal(takeStartupPacket(packet.subarray(0, packet.length - 1), MAX_STARTUP_PACKET), undefined);
  });

  it("returns the packet and the bytes after it", () => {
    const whole = takeStartupPacket(packet, MAX_STARTUP_PACKET)!;
    assert.deepEqual(whole.packet, packet);
    assert.equal(whole.rest.length, 0);
    const extra = Buffer.from("trailing");
    const more = takeStartupPacket(Buffer.concat([packet, extra]), MAX_STARTUP_PACKET)!;
    assert.deepEqual(more.packet, packet);
    assert.deepEqual(more.rest, extra);
  });

  it("refuses a length below 8 or above the limit", () => {
    for (const len of [0, 4, 7, -1, -0x80000000]) {
      assertPortcullis(() => takeStartupPacket(int32(len), MAX_STARTUP_PACKET), "E_PROTOCOL", /invalid length of startup packet/);
    }
    for (const len of [MAX_STARTUP_PACKET + 1, 0x7fffffff]) {
      assertPortcullis(() => takeStartupPacket(int32(len), MAX_STARTUP_PACKET), "E_PROTOCOL", /invalid length of startup packet/);
    }
    // The limit itself is allowed (and waits for the body).
    assert.equal(takeStartupPacket(int32(MAX_STARTUP_PACKET), MAX_STARTUP_PACKET), undefined);
  });
});

describe("decodeStartupPacket", () => {
  it("recognises SSLRequest, GSSENCRequest and CancelRequest", () => {
    assert.deepEqual(decodeStartupPacket(encode.sslRequest()), { kind: "ssl" });
    assert.deepEqual(decodeStartupPacket(startupPacket(SSL_REQUEST_CODE)), { kind: "ssl" });
    assert.deepEqual(decodeStartupPacket(startupPacket(GSSENC_REQUEST_CODE)), { kind: "gssenc" });
    assert.deepEqual(decodeStartupPacket(encode.cancelRequest(1234, -56789)), { kind: "cancel", processId: 1234, secretKey: -56789 });
    assert.deepEqual(
      decodeStartupPacket(startupPacket(CANCEL_REQUEST_CODE, Buffer.concat([int32(0x7fffffff), int32(-1)]))),
      { kind: "cancel", processId: 0x7fffffff, secretKey: -1 },
    );
  });

  it("refuses encryption and cancel requests of the wrong length", () => {
    assertPortcullis(() => decodeStartupPacket(startupPacket(SSL_REQUEST_CODE, Buffer.alloc(4))), "E_PROTOCOL", /encryption request/);
    assertPortcullis(() => decodeStartupPacket(startupPacket(GSSENC_REQUEST_CODE, Buffer.alloc(1))), "E_PROTOCOL", /encryption request/);
    assertPortcullis(() => decodeStartupPacket(startupPacket(CANCEL_REQUEST_CODE, Buffer.alloc(4))), "E_PROTOCOL", /cancel request/);
    assertPortcullis(() => decodeStartupPacket(startupPacket(CANCEL_REQUEST_CODE, Buffer.alloc(12))), "E_PROTOCOL", /cancel request/);
  });

  it("decodes a 3.0 StartupMessage with its parameters, in order", () => {
    const p = decodeStartupPacket(encode.startup({ user: "agent", database: "app", application_name: "tést ✓", options: "-c a=b" }));
    assert.equal(p.kind, "startup");
    if (p.kind !== "startup") return;
    assert.equal(p.major, 3);
    assert.equal(p.minor, 0);
    assert.deepEqual([...p.params], [["user", "agent"], ["database", "app"], ["application_name", "tést ✓"], ["options", "-c a=b"]]);
    assert.deepEqual(p.unsupportedOptions, []);
  });

  it("decodes a StartupMessage with no parameters at all (only the terminator)", () => {
    const p = decodeStartupPacket(startupPacket(PROTOCOL_3_0, "\0"));
    assert.equal(p.kind, "startup");
    if (p.kind === "startup") assert.equal(p.params.size, 0);
  });

  it("keeps empty values", () => {
    const p = decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0agent\0options\0\0\0"));
    assert.ok(p.kind === "startup");
    assert.equal(p.params.get("options"), "");
  });

  it("refuses a duplicate parameter", () => {
    assertPortcullis(
      () => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0a\0database\0d\0user\0b\0\0")),
      "E_PROTOCOL", /duplicate startup parameter "user"/,
    );
  });

  it("refuses a packet without the final terminator", () => {
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0agent\0")), "E_PROTOCOL", /terminator/);
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0)), "E_PROTOCOL", /terminator/);
    // A name without its value, or a value without its NUL.
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0")), "E_PROTOCOL");
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0agent")), "E_PROTOCOL");
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user")), "E_PROTOCOL");
  });

  it("refuses an empty option name in the middle (anything after the terminator)", () => {
    assertPortcullis(
      () => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0agent\0\0database\0app\0\0")),
      "E_PROTOCOL", /expected terminator as last byte/,
    );
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "\0user\0agent\0\0")), "E_PROTOCOL");
    assertPortcullis(() => decodeStartupPacket(startupPacket(PROTOCOL_3_0, "user\0agent\0\0\0")), "E_PROTOCOL");
  });

  it("refuses protocol 2.0 (and any major other than 3)", () => {
    assertPortcullis(() => decodeStartupPacket(startupPacket(0x00020000, "user\0agent\0\0")), "E_PROTOCOL", /unsupported frontend protocol 2\.0/);
    assertPortcullis(() => decodeStartupPacket(startupPacket(0x00040000, "user\0agent\0\0")), "E_PROTOCOL", /4\.0/);
    assertPortcullis(() => decodeStartupPacket(startupPacket(0x12345678, "user\0agent\0\0")), "E_PROTOCOL", /unsupported frontend protocol/);
  });

  it("accepts 3.2 as minor 2 and lists _pq_. options apart from the parameters", () => {
    const p = decodeStartupPacket(startupPacket(PROTOCOL_3_0 + 2, "user\0agent\0_pq_.foo\0on\0database\0app\0_pq_.bar\0x\0\0"));
    assert.ok(p.kind === "startup");
    assert.equal(p.major, 3);
    assert.equal(p.minor, 2);
    assert.deepEqual([...p.params], [["user", "agent"], ["database", "app"]]);
    assert.deepEqual(p.unsupportedOptions, ["_pq_.foo", "_pq_.bar"]);
    assert.ok(!p.params.has("_pq_.foo"));
  });

  it("throws E_PROTOCOL (not a RangeError) for a buffer too short to hold a length and a code", () => {
    // takeStartupPacket never hands over fewer than 8 bytes, but the module promises
    // "a malformed message throws E_PROTOCOL" for every decoder.
    for (const n of [0, 3, 4, 7]) {
      assertPortcullis(() => decodeStartupPacket(Buffer.alloc(n)), "E_PROTOCOL");
    }
  });
});

describe("decodePassword", () => {
  it("returns the text of a PasswordMessage", () => {
    assert.equal(decodePassword(frameOf(encode.password("eyJhbGciOi.token.sig"))), "eyJhbGciOi.token.sig");
    assert.equal(decodePassword(frameOf(encode.password(""))), "");
    assert.equal(decodePassword(frameOf(encode.password("pässwörd ✓"))), "pässwörd ✓");
  });

  it("refuses another message type, a missing NUL, or bytes after the NUL", () => {
    assertPortcullis(() => decodePassword(frameOf(encode.query("tok"))), "E_PROTOCOL", /expected a password message/);
    assertPortcullis(() => decodePassword(frameOf(typed("p", "no-terminator"))), "E_PROTOCOL");
    assertPortcullis(() => decodePassword(frameOf(typed("p"))), "E_PROTOCOL");
    assertPortcullis(() => decodePassword(frameOf(typed("p", "tok\0extra"))), "E_PROTOCOL", /invalid password message/);
    assertPortcullis(() => decodePassword(frameOf(typed("p", "tok\0\0"))), "E_PROTOCOL");
  });

  it("does not echo the password in its errors", () => {
    const secret = "SECRET-TOKEN-VALUE";
    for (const raw of [typed("p", secret), typed("p", `${secret}\0trailing`)]) {
      assert.throws(() => decodePassword(frameOf(raw)), (err: Error) => !err.message.includes(secret));
    }
  });
});

// ------------------------------------------------------------------ round trips

describe("encode/decode round trips", () => {
  it("ErrorResponse and NoticeResponse fields", () => {
    const fields: [string, string][] = [
      ["S", "FATAL"], ["V", "FATAL"], ["C", "08P01"], ["M", "portcullis: nope ✓"], ["D", "détail"], ["H", ""], ["P", "12"],
    ];
    for (const type of [MSG.ErrorResponse, MSG.NoticeResponse]) {
      const raw = encode.errorFields(type, fields);
      const frame = frameOf(raw);
      assert.equal(frame.type, type);
      assert.equal(raw[raw.length - 1], 0);
      assert.deepEqual([...decodeErrorFields(frame)], fields);
    }
    assert.deepEqual([...decodeErrorFields(frameOf(encode.errorFields(MSG.ErrorResponse, [])))], []);
  });

  it("pgError writes S, V, C, M and the optional D and H", () => {
    const f = decodeErrorFields(frameOf(pgError({ severity: "FATAL", code: "28P01", message: "portcullis: invalid token", detail: "d", hint: "h" })));
    assert.deepEqual(Object.fromEntries(f), { S: "FATAL", V: "FATAL", C: "28P01", M: "portcullis: invalid token", D: "d", H: "h" });
    const notice = frameOf(pgError({ severity: "NOTICE", code: "00000", message: "m" }, MSG.NoticeResponse));
    assert.equal(notice.type, MSG.NoticeResponse);
    assert.deepEqual(Object.fromEntries(decodeErrorFields(notice)), { S: "NOTICE", V: "NOTICE", C: "00000", M: "m" });
  });

  it("ParameterStatus", () => {
    for (const [name, value] of [["server_version", "16.4"], ["TimeZone", "Europe/Zürich"], ["application_name", ""]] as const) {
      const raw = encode.parameterStatus(name, value);
      assert.equal(raw[0], MSG.ParameterStatus);
      assert.deepEqual(decodeParameterStatus(frameOf(raw)), [name, value]);
    }
    assertPortcullis(() => decodeParameterStatus(frameOf(typed("S", "name-only"))), "E_PROTOCOL");
    assertPortcullis(() => decodeParameterStatus(frameOf(typed("S", "name\0value"))), "E_PROTOCOL");
  });

  it("BackendKeyData, including negative and extreme keys", () => {
    for (const [pid, key] of [[1, 2], [0x7fffffff, -0x80000000], [42, -1], [0, 0]] as const) {
      const raw = encode.backendKeyData(pid, key);
      assert.equal(raw.length, 13);
      assert.deepEqual(decodeBackendKeyData(frameOf(raw)), { processId: pid, secretKey: key });
    }
    assertPortcullis(() => decodeBackendKeyData(frameOf(typed("K", Buffer.alloc(4)))), "E_PROTOCOL");
    assertPortcullis(() => decodeBackendKeyData(frameOf(typed("K", Buffer.alloc(12)))), "E_PROTOCOL");
  });

  it("Authentication requests with and without data", () => {
    const cases: [number, Buffer][] = [
      [AUTH.Ok, Buffer.alloc(0)],
      [AUTH.CleartextPassword, Buffer.alloc(0)],
      [AUTH.MD5Password, Buffer.from([1, 2, 3, 4])],
      [AUTH.SASL, Buffer.from("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")],
      [AUTH.SASLContinue, Buffer.from("r=abc,s=c2FsdA==,i=4096")],
      [AUTH.SASLFinal, Buffer.from("v=xyz")],
    ];
    for (const [code, data] of cases) {
      const raw = encode.authentication(code, data);
      assert.equal(raw[0], MSG.Authentication);
      const got = decodeAuthentication(frameOf(raw));
      assert.equal(got.code, code);
      assert.deepEqual(got.data, data);
    }
    assertPortcullis(() => decodeAuthentication(frameOf(typed("R", Buffer.alloc(3)))), "E_PROTOCOL");
  });

  it("frontend encoders produce what the decoders and the framer expect", () => {
    const s = decodeStartupPacket(encode.startup(new Map([["user", "u"], ["database", "d"]])));
    assert.ok(s.kind === "startup");
    assert.deepEqual([...s.params], [["user", "u"], ["database", "d"]]);
    const startup = encode.startup({ user: "u" });
    assert.equal(startup.readInt32BE(0), startup.length);
    const q = frameOf(encode.query("select 1"));
    assert.equal(q.type, MSG.Query);
    assert.deepEqual(q.raw.subarray(5), Buffer.from("select 1\0"));
    const nego = frameOf(encode.negotiateProtocolVersion(0, ["_pq_.a", "_pq_.b"]));
    assert.equal(nego.type, MSG.NegotiateProtocolVersion);
    assert.equal(nego.raw.readInt32BE(5), PROTOCOL_3_0);
    assert.equal(nego.raw.readInt32BE(9), 2);
    assert.deepEqual(nego.raw.subarray(13), Buffer.from("_pq_.a\0_pq_.b\0"));
    const sasl = frameOf(encode.saslInitialResponse("SCRAM-SHA-256", Buffer.from("n,,n=,r=x")));
    assert.deepEqual(sasl.raw.subarray(5), Buffer.concat([Buffer.from("SCRAM-SHA-256\0"), int32(9), Buffer.from("n,,n=,r=x")]));
    assert.deepEqual(frameOf(encode.terminate()).raw, typed("X"));
    assert.deepEqual(frameOf(encode.readyForQuery(0x49)).raw, typed("Z", Buffer.from("I")));
  });
});

// ------------------------------------------------------------------ property-style fuzz

/** Runs `fn`; anything it throws must be a PortcullisError. Returns what it threw, if anything. */
function onlyPortcullis(what: string, input: Buffer, fn: () => unknown): PortcullisError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof PortcullisError) return err;
    assert.fail(`${what} threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message} for input ${input.toString("hex").slice(0, 200)}`);
  }
}

describe("fuzz: random bytes never escape as anything but PortcullisError", () => {
  const CASES = 2000;
  const SEED = 0x5eed_2024;

  it(`Framer.push on ${CASES} random streams in random chunks`, { timeout: 20_000 }, () => {
    const rand = prng(SEED);
    let threw = 0;
    let framed = 0;
    for (let c = 0; c < CASES; c++) {
      const len = Math.floor(rand() * 600);
      const input = randomBytesFrom(rand, len);
      // Half the time, make the lengths plausible so multi-message paths are exercised.
      if (c % 2 === 0) {
        let off = 0;
        while (off + 5 <= input.length) {
          const l = 4 + Math.floor(rand() * 40);
          input.writeInt32BE(l, off + 1);
          off += 1 + l;
        }
      }
      const framer = new Framer(1 + Math.floor(rand() * 512));
      const out: Buffer[] = [];
      let off = 0;
      const err = onlyPortcullis("Framer.push", input, () => {
        while (off < input.length) {
          const n = 1 + Math.floor(rand() * 64);
          for (const f of framer.push(input.subarray(off, off + n))) {
            out.push(f.raw);
            assert.equal(f.type, f.raw[0]);
            assert.equal(f.raw.length, 1 + f.raw.readInt32BE(1));
            // The decoders must hold too, whatever the frame.
            for (const decode of [decodePassword, decodeAuthentication, decodeParameterStatus, decodeBackendKeyData, decodeErrorFields]) {
              onlyPortcullis(decode.name, f.raw, () => decode(f));
            }
          }
          off += n;
        }
      });
      if (err) threw++;
      framed += out.length;
      // Whatever was framed is exactly a prefix of the input.
      const joined = Buffer.concat(out);
      assert.ok(input.subarray(0, joined.length).equals(joined), `case ${c}: frames are not a prefix of the input`);
      if (!err) assert.equal(joined.length + framer.buffered, input.length, `case ${c}: bytes lost`);
    }
    // Both outcomes must have been exercised, or the fuzz proves nothing.
    assert.ok(threw > 100, `only ${threw} cases threw`);
    assert.ok(framed > 1000, `only ${framed} frames`);
  });

  it(`takeStartupPacket + decodeStartupPacket on ${CASES} random packets`, { timeout: 20_000 }, () => {
    const rand = prng(SEED + 1);
    const valid = encode.startup({ user: "agent", database: "app", options: "-c portcullis.run_id=r1" });
    const outcomes = { startup: 0, other: 0, threw: 0 };
    for (let c = 0; c < CASES; c++) {
      let input: Buffer;
      switch (c % 4) {
        case 0: // pure noise
          input = randomBytesFrom(rand, Math.floor(rand() * 200));
          break;
        case 1: { // a plausible length and a random known code, random body
          const codes = [PROTOCOL_3_0, PROTOCOL_3_0 + 2, SSL_REQUEST_CODE, GSSENC_REQUEST_CODE, CANCEL_REQUEST_CODE, 0x00020000];
          const code = codes[Math.floor(rand() * codes.length)]!;
          // Half the time, the body length a request of that code must have.
          const exact = code === CANCEL_REQUEST_CODE ? 8 : code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE ? 0 : undefined;
          const body = randomBytesFrom(rand, exact !== undefined && rand() < 0.5 ? exact : Math.floor(rand() * 40));
          for (let i = 0; i < body.length; i++) if (rand() < 0.3) body[i] = 0; // lots of NULs
          input = startupPacket(code, body);
          break;
        }
        default: { // a valid StartupMessage with a few bytes flipped, truncated or extended
          input = Buffer.from(valid);
          const flips = 1 + Math.floor(rand() * 4);
          for (let i = 0; i < flips; i++) {
            const at = 4 + Math.floor(rand() * (input.length - 4));
            input[at] = rand() < 0.5 ? 0 : Math.floor(rand() * 256);
          }
          if (rand() < 0.3) {
            const cut = 8 + Math.floor(rand() * (input.length - 8));
            input = Buffer.concat([int32(cut), input.subarray(4, cut)]);
          }
          break;
        }
      }
      const err = onlyPortcullis("takeStartupPacket/decodeStartupPacket", input, () => {
        const taken = takeStartupPacket(input, MAX_STARTUP_PACKET);
        if (!taken) return;
        const p = decodeStartupPacket(taken.packet);
        if (p.kind === "startup") {
          outcomes.startup++;
          assert.equal(p.major, 3);
          for (const [k, v] of p.params) { assert.equal(typeof k, "string"); assert.equal(typeof v, "string"); assert.notEqual(k, ""); }
        } else outcomes.other++;
      });
      if (err) outcomes.threw++;
      // decodeStartupPacket straight on the raw bytes (anything of at least 8 bytes is a candidate packet).
      if (input.length >= 8) onlyPortcullis("decodeStartupPacket", input, () => decodeStartupPacket(input));
    }
    assert.ok(outcomes.startup > 50, JSON.stringify(outcomes));
    assert.ok(outcomes.other > 50, JSON.stringify(outcomes));
    assert.ok(outcomes.threw > 200, JSON.stringify(outcomes));
  });
});
