/**
 * COPY TO STDOUT rows in text and CSV format: split a data line into fields and join it back,
 * so a masked column can be replaced and every other byte kept. Pure.
 *
 * Reading follows PostgreSQL's own COPY FROM parser (CopyReadAttributesText/CSV in copyfromparse.c),
 * so a line means to the gateway what it means to PostgreSQL; writing follows its COPY TO writer
 * (CopyAttributeOutText/CSV in copyto.c), so a joined line is what the server would have sent.
 * Text: fields end at an unescaped delimiter; the NULL string is compared with the field as written;
 * backslash escapes \b \f \n \r \t \v, \ooo (octal byte), \xHH (hex byte), and \c for any other c.
 * CSV: a field may be quoted in parts; inside quotes the ESCAPE character makes the next quote or
 * escape character literal; an unquoted field equal to the NULL string is NULL.
 */

export interface CopyFormat {
  csv: boolean;
  delimiter: string;
  quote: string;
  /** CSV ESCAPE (defaults to the quote character). */
  escape: string;
  null: string;
  /** HEADER: the first line holds column names, not a row. */
  header: boolean;
  /**
   * Why the gateway cannot read this COPY's output exactly as PostgreSQL wrote it (another encoding,
   * a format other than text or CSV, a NULL string a value can print as, options it does not know).
   * A masker must refuse such a COPY rather than guess.
   */
  unreadable?: string;
  /**
   * Text format whose NULL string a value also prints as (`NULL 'NIL'` and the value NIL): a field
   * read as NULL may be that value, so a masker treats it as one (a masked column's NULLs are masked).
   */
  ambiguousNull?: boolean;
}

export const DEFAULT_TEXT: CopyFormat = { csv: false, delimiter: "\t", quote: '"', escape: '"', null: "\\N", header: false };
export const DEFAULT_CSV: CopyFormat = { csv: true, delimiter: ",", quote: '"', escape: '"', null: "", header: false };

/** One field of a line: its value (null for NULL) and the text PostgreSQL wrote for it. */
export interface CopyField {
  value: string | null;
  raw: string;
}

/** Fields of one line (without its newline); null for NULL. Values are unescaped. */
export function splitCopyLine(line: string, f: CopyFormat): (string | null)[] {
  return readCopyLine(line, f).map((x) => x.value);
}

/** Fields of one line (without its newline), each with the text it was read from. */
export function readCopyLine(line: string, f: CopyFormat): CopyField[] {
  const out: CopyField[] = [];
  const readField = f.csv ? readCsvField : readTextField;
  for (let at = 0; ;) {
    const { field, next } = readField(line, at, f);
    out.push(field);
    if (next < 0) return out;
    at = next;
  }
}

/**
 * A line of `values`. Where `kept` (the line's fields as read) holds the same value at the same
 * place, its text is reused byte for byte (FORCE_QUOTE, PostgreSQL's choices); other values are
 * written as PostgreSQL's COPY TO writes them.
 */
export function joinCopyLine(values: (string | null)[], f: CopyFormat, kept?: CopyField[]): string {
  const single = values.length === 1;
  return values.map((v, i) => {
    const before = kept?.[i];
    if (before && before.value === v) return before.raw;
    if (v === null) return f.null;
    return f.csv ? writeCsvValue(v, f, single) : writeTextValue(v, f.delimiter);
  }).join(f.delimiter);
}

/**
 * Whether a non-NULL value can be written exactly as the NULL string (text format, e.g. NULL ''
 * or NULL 'x'): PostgreSQL then writes both the same way, and nothing can tell them apart. CSV
 * quotes a value equal to the NULL string, so it is never ambiguous.
 */
export function nullIsAmbiguous(f: CopyFormat): boolean {
  if (f.csv) return false;
  // The NULL string is some value's output exactly when writing what it reads as gives it back.
  const read = readTextField(f.null, 0, { ...f, null: "\0" });
  return read.next < 0 && writeTextValue(read.field.value ?? "", f.delimiter) === f.null;
}

/**
 * Whether a field written as the NULL string reads back as NULL wherever it stands: a NULL string
 * ending in a lone backslash (text) would escape the delimiter after it or vanish at the line's end.
 */
export function nullReadsBack(f: CopyFormat): boolean {
  const fields = readCopyLine(`${f.null}${f.delimiter}${f.null}`, f);
  return fields.length === 2 && fields.every((x) => x.value === null);
}

interface Read {
  field: CopyField;
  /** Where the next field starts; -1 at the end of the line. */
  next: number;
}

const TEXT_ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };
const isOctal = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "7";
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** One text-format field starting at `at`: up to an unescaped delimiter or the end of the line. */
function readTextField(line: string, at: number, f: CopyFormat): Read {
  let i = at;
  let value = "";
  // \ooo and \xHH give bytes, not characters: from the first one on, the field is built as UTF-8
  // bytes (as PostgreSQL builds it) and decoded at the end.
  let bytes: number[] | undefined;
  const add = (s: string): void => {
    if (bytes) bytes.push(...Buffer.from(s, "utf8"));
    else value += s;
  };
  const addByte = (b: number): void => {
    bytes ??= [...Buffer.from(value, "utf8")];
    bytes.push(b & 0xff);
  };
  let end = -1;
  let next = -1;
  while (i < line.length) {
    const c = line[i]!;
    if (c === f.delimiter) { end = i; next = i + 1; break; }
    if (c !== "\\") {
      const plain = nextSpecial(line, i, f.delimiter);
      add(line.slice(i, plain));
      i = plain;
      continue;
    }
    // A backslash that ends the line escapes nothing and ends the field (PostgreSQL drops it).
    if (i + 1 >= line.length) { end = i; break; }
    const e = line[i + 1]!;
    i += 2;
    if (isOctal(e)) {
      let n = e.charCodeAt(0) - 48;
      for (let k = 0; k < 2 && isOctal(line[i]); k++) n = n * 8 + line.charCodeAt(i++) - 48;
      addByte(n);
    } else if (e === "x" && isHex(line[i])) {
      let n = parseInt(line[i++]!, 16);
      if (isHex(line[i])) n = n * 16 + parseInt(line[i++]!, 16);
      addByte(n);
    } else add(TEXT_ESCAPES[e] ?? e);
  }
  if (end < 0) end = i;
  const raw = line.slice(at, end);
  const text = bytes ? Buffer.from(bytes).toString("utf8") : value;
  return { field: { value: raw === f.null ? null : text, raw }, next };
}

/** The first delimiter or backslash at or after `from` (the line's length if none). */
function nextSpecial(line: string, from: number, delimiter: string): number {
  for (let i = from; i < line.length; i++) if (line[i] === delimiter || line[i] === "\\") return i;
  return line.length;
}

/** One CSV field starting at `at`, quoted in whole, in parts or not at all. */
function readCsvField(line: string, at: number, f: CopyFormat): Read {
  let i = at;
  let value = "";
  let quoted = false;
  for (;;) {
    // Outside quotes: up to a delimiter, a quote, or the end of the line.
    let j = i;
    while (j < line.length && line[j] !== f.delimiter && line[j] !== f.quote) j++;
    value += line.slice(i, j);
    if (j >= line.length || line[j] === f.delimiter) {
      const raw = line.slice(at, j);
      return { field: { value: !quoted && raw === f.null ? null : value, raw }, next: j < line.length ? j + 1 : -1 };
    }
    // Inside quotes: the escape character makes a following quote or escape literal.
    quoted = true;
    i = j + 1;
    for (;;) {
      // An unterminated quote: PostgreSQL refuses the line; the rest of it is this field's value.
      if (i >= line.length) return { field: { value, raw: line.slice(at) }, next: -1 };
      const c = line[i]!;
      if (c === f.escape && (line[i + 1] === f.escape || line[i + 1] === f.quote)) {
        value += line[i + 1];
        i += 2;
        continue;
      }
      i++;
      if (c === f.quote) break;
      value += c;
    }
  }
}

/** A value as CopyAttributeOutText writes it: control characters, backslash and delimiter escaped. */
function writeTextValue(v: string, delimiter: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    const letter = c === "\b" ? "b" : c === "\f" ? "f" : c === "\n" ? "n" : c === "\r" ? "r" : c === "\t" ? "t" : c === "\v" ? "v" : undefined;
    if (letter === undefined && c !== "\\" && c !== delimiter) continue;
    out += `${v.slice(from, i)}\\${letter ?? c}`;
    from = i + 1;
  }
  return from === 0 ? v : out + v.slice(from);
}

/**
 * A value as CopyAttributeOutCSV writes it: quoted when it holds the delimiter, the quote, CR or LF,
 * equals the NULL string, or is `\.` alone on a line (an end-of-data marker to older readers).
 */
function writeCsvValue(v: string, f: CopyFormat, single: boolean): string {
  const quote = v === f.null || (single && v === "\\.") || v.includes(f.delimiter) || v.includes(f.quote) || v.includes("\n") || v.includes("\r");
  if (!quote) return v;
  let body = "";
  for (const c of v) body += c === f.quote || c === f.escape ? f.escape + c : c;
  return f.quote + body + f.quote;
}
