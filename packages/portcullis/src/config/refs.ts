/**
 * `${env:NAME}` and `${file:PATH}` references inside string values of the config.
 * Resolved before validation so that a secret never has to be written inline. A reference
 * that cannot be resolved is a config problem reported at its path, never a silent empty string.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const REF = /\$\{(env|file):([^}]+)\}/g;

export interface RefProblem { path: string; message: string }

export function resolveRefs(
  value: unknown,
  opts: { env: NodeJS.ProcessEnv; baseDir: string },
  path = "",
  problems: RefProblem[] = [],
): { value: unknown; problems: RefProblem[] } {
  const walk = (v: unknown, p: string): unknown => {
    if (typeof v === "string") return resolveString(v, p);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${p}[${i}]`));
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, p ? `${p}.${k}` : k);
      return out;
    }
    return v;
  };
  const resolveString = (s: string, p: string): string =>
    s.replace(REF, (_whole, kind: string, arg: string) => {
      const name = arg.trim();
      if (kind === "env") {
        const found = opts.env[name];
        if (found === undefined) {
          problems.push({ path: p, message: `environment variable ${name} is not set` });
          return "";
        }
        return found;
      }
      try {
        // Trailing newline of a key or password file is never part of the secret.
        return readFileSync(resolve(opts.baseDir, name), "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code ?? "unreadable";
        problems.push({ path: p, message: `cannot read file ${name} (${why})` });
        return "";
      }
    });
  return { value: walk(value, path), problems };
}
