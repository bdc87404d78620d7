/**
 * Codec for result messages the masking stage rewrites: RowDescription, DataRow, Bind's result
 * formats, CopyOutResponse. Pure. A DataRow is rebuilt only when a value changes; row length
 * fields are recomputed, untouched values are copied as bytes.
 */
import { PortcullisError } from "../../errors.js";
import type { Frame } from "./framer.js";
import { decodeBind } from "./messages.js";

export interface FieldDescription {
  name: string;
  tableOid: number;
  attnum: number;
  typeOid: number;
  /** 0 text, 1 binary (as described; for Execute the portal's Bind decides). */
  format: number;
}

const bad = (what: string) => new PortcullisError("E_PROTOCOL", `malformed ${what}`);

export function decodeRowDescription(frame: Frame): FieldDescription[] {
  const b = frame.raw;
  if (b.length < 7) throw bad("RowDescription");
  const count = b.readInt16BE(5);
  const fields: FieldDescription[] = [];
  let off = 7;
  for (let i = 0; i < count; i++) {
    const end = b.indexOf(0, off);
    if (end < 0 || end + 19 > b.length) throw bad("RowDescription");
    fields.push({
      name: b.toString("utf8", off, end),
      tableOid: b.readUInt32BE(end + 1),
      attnum: b.readInt16BE(end + 5),
      typeOid: b.readUInt32BE(end + 7),
      format: b.readInt16BE(end + 17),
    });
    off = end + 19;
  }
  return fields;
}

/** Column values of a DataRow as views into the frame (null for SQL NULL). */
export function dataRowValues(frame: Frame): (Buffer | null)[] {
  const b = frame.raw;
  if (b.length < 7) throw bad("DataRow");
  const count = b.readInt16BE(5);
  const values: (Buffer | null)[] = new Array(count);
  let off = 7;
  for (let i = 0; i < count; i++) {
    if (off + 4 > b.length) throw bad("DataRow");
    const len = b.readInt32BE(off);
    off += 4;
    if (len < 0) { values[i] = null; continue; }
    if (off + len > b.length) throw bad("DataRow");
    values[i] = b.subarray(off, off + len);
    off += len;
  }
  return values;
}

export function encodeDataRow(values: (Buffer | null)[]): Buffer {
  let size = 7;
  for (const v of values) size += 4 + (v ? v.length : 0);
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x44;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(values.length, 5);
  let off = 7;
  for (const v of values) {
    if (v === null) { out.writeInt32BE(-1, off); off += 4; continue; }
    out.writeInt32BE(v.length, off);
    off += 4;
    off += v.copy(out, off);
  }
  return out;
}

/** Result-column format codes of a Bind: [] = all text, [f] = all f, else one per column. */
export function bindResultFormats(frame: Frame): number[] {
  // One reading of a Bind, shared with policy and session state (messages.ts validates every count).
  return decodeBind(frame).resultFormats;
}

export function formatOf(formats: number[], column: number): number {
  if (formats.length === 0) return 0;
  if (formats.length === 1) return formats[0]!;
  return formats[column] ?? 0;
}

/** CopyOutResponse: overall format (0 text, 1 binary). */
export function copyOutFormat(frame: Frame): number {
  return frame.raw[5] ?? 0;
}
