/**
 * The `options` startup parameter (what libpq's PGOPTIONS sends): `-c name=value` and
 * `--name=value` settings, space separated, backslash escapes a character. Settings in the
 * `portcullis.` namespace are the agent's words to the gateway (approval mode, run-context hints):
 * they are taken out and never reach the target.
 */

export interface ParsedOptions {
  /** `portcullis.*` settings, names without the prefix. */
  gateway: Map<string, string>;
  /** Every other `-c name=value` setting (names lower-cased), as the target will apply it. */
  settings: Map<string, string>;
  /** The options string to forward, without the gateway's settings; undefined when nothing is left. */
  forward: string | undefined;
}

function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

const escape = (w: string) => w.replace(/[\\\s]/g, (c) => `\\${c}`);

export function parseStartupOptions(options: string | undefined): ParsedOptions {
  const gateway = new Map<string, string>();
  const settings = new Map<string, string>();
  if (!options) return { gateway, settings, forward: undefined };
  const words = splitWords(options);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let setting: string | undefined;
    let consumed = 1;
    if (w === "-c" && i + 1 < words.length) { setting = words[i + 1]; consumed = 2; }
    else if (w.startsWith("-c") && w.length > 2) setting = w.slice(2);
    else if (w.startsWith("--")) setting = w.slice(2);
    const eq = setting?.indexOf("=") ?? -1;
    if (setting && eq > 0 && setting.slice(0, eq).toLowerCase().startsWith("portcullis.")) {
      gateway.set(setting.slice("portcullis.".length, eq).toLowerCase(), setting.slice(eq + 1));
    } else {
      if (setting && eq > 0) settings.set(setting.slice(0, eq).toLowerCase().replace(/-/g, "_"), setting.slice(eq + 1));
      kept.push(...words.slice(i, i + consumed));
    }
    i += consumed - 1;
  }
  return { gateway, settings, forward: kept.length > 0 ? kept.map(escape).join(" ") : undefined };
}
