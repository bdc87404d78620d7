/**
 * COPY TO STDOUT rows in text and CSV format: split a data line into fields and join it back,
 * so a masked column can be replaced and every other byte kept. Pure.
 * Text format: fields separated by the delimiter, `\N` is NULL, backslash escapes.
 * CSV: quoted fields with doubled quotes; an unquoted empty field is NULL.
 */

export interface CopyFormat {
  csv: boolean;
  delimiter: string;
  quote: string;
  null: string;
}

export const DEFAULT_TEXT: CopyFormat = { csv: false, delimiter: "\t", quote: '"', null: "\\N" };
export const DEFAULT_CSV: CopyFormat = { csv: true, delimiter: ",", quote: '"', null: "" };

/** Fields of one line (without its newline); null for NULL. Values are unescaped. */
export function splitCopyLine(line: string, f: CopyFormat): (string | null)[] {
  const out: (string | null)[] = [];
  if (!f.csv) {
    for (const raw of line.split(f.delimiter)) {
      out.push(raw === f.null ? null : raw.replace(/\\(.)/g, (_m, c: string) => ({ n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", v: "\v", "\\": "\\" })[c] ?? c));
    }
    return out;
  }
  let i = 0;
  for (;;) {
    if (line[i] === f.quote) {
      let v = "";
      i++;
      for (;;) {
        if (i >= line.length) break;
        if (line[i] === f.quote) {
          if (line[i + 1] === f.quote) { v += f.quote; i += 2; continue; }
          i++;
          break;
        }
        v += line[i++];
      }
      out.push(v);
    } else {
      const end = line.indexOf(f.delimiter, i);
      const raw = end < 0 ? line.slice(i) : line.slice(i, end);
      out.push(raw === f.null ? null : raw);
      i = end < 0 ? line.length : end;
    }
    if (i >= line.length || line[i] !== f.delimiter) break;
    i++;
  }
  return out;
}

export function joinCopyLine(fields: (string | null)[], f: CopyFormat): string {
  return fields.map((v) => {
    if (v === null) return f.null;
    if (!f.csv) return v.replace(/[\\\n\r\t]/g, (c) => ({ "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" })[c]!);
    return v === "" || v.includes(f.delimiter) || v.includes(f.quote) || /[\r\n]/.test(v) ? `${f.quote}${v.split(f.quote).join(f.quote + f.quote)}${f.quote}` : v;
  }).join(f.delimiter);
}
