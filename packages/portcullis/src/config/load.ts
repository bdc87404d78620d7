/**
 * Reading portcullis.yaml: YAML → `${env:}`/`${file:}` references → schema. Every problem is
 * collected and reported at once as `path.to.key: what is wrong`.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { PortcullisError } from "../errors.js";
import { resolveRefs } from "./refs.js";
import { configSchema, type Config } from "./schema.js";

export interface LoadedConfig extends Config {
  /** Absolute path of the file the config came from (for SIGHUP re-reads and relative paths). */
  source: string;
  /** data_dir resolved against the config file's folder. */
  dataDir: string;
  /** Store URL with a relative sqlite path resolved against the config file's folder. */
  storeUrl: string;
}

export class ConfigError extends PortcullisError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super("E_CONFIG_INVALID", `${source}: invalid configuration\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.problems = problems;
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || "(root)";
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = root;
  for (const seg of path) v = v && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[seg] : undefined;
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case "invalid_type":
      return valueAt(input, issue.path) === undefined ? `required (expected ${article(issue.expected)})` : `expected ${article(issue.expected)}`;
    case "unrecognized_keys":
      return issue.keys.length === 1 ? `unknown key "${issue.keys[0]}"` : `unknown keys ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
    case "invalid_value":
      return `expected one of: ${issue.values.map((v) => String(v)).join(", ")}`;
    case "invalid_union":
      if (issue.discriminator === "type") return "expected one of: postgres, http (mysql and ssh connections are not available in this version)";
      return issue.message;
    case "too_small":
      if (issue.origin === "array" && issue.message.startsWith("Too small")) return `expected at least ${issue.minimum} item(s)`;
      if (issue.origin === "string" && issue.message.startsWith("Too small")) return "must not be empty";
      return issue.message;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  if (expected === "array") return "a list";
  if (expected === "object") return "a mapping";
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/** Validates an already-parsed document. Throws ConfigError listing every problem. */
export function parseConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const baseDir = dirname(resolve(source));
  const { value, problems: refProblems } = resolveRefs(raw ?? {}, { env, baseDir });
  const problems = refProblems.map((p) => `${p.path}: ${p.message}`);
  const result = configSchema.safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${formatPath(issue.path)}: ${describeIssue(issue, value)}`);
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(source, problems);
  const cfg = result.data;
  const dataDir = isAbsolute(cfg.gateway.data_dir) ? cfg.gateway.data_dir : resolve(baseDir, cfg.gateway.data_dir);
  const store = cfg.store ?? `sqlite:${resolve(dataDir, "portcullis.db")}`;
  const storeUrl = store.startsWith("sqlite:") && !isAbsolute(store.slice(7)) && store !== "sqlite::memory:"
    ? `sqlite:${resolve(baseDir, store.slice(7))}`
    : store;
  // Files named in the config are relative to the config file, like data_dir.
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const audit = {
    ...cfg.audit,
    anchors: { ...cfg.audit.anchors, ...(cfg.audit.anchors.file ? { file: path(cfg.audit.anchors.file) } : {}) },
    sinks: cfg.audit.sinks.map((s) => (s.file ? { ...s, file: { path: path(s.file.path) } } : s)),
  };
  return { ...cfg, audit, source: resolve(source), dataDir, storeUrl };
}

/** Reads and validates a config file. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`(file): cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `(yaml) line ${e.linePos?.[0]?.line ?? "?"}: ${e.code}: ${e.message.split("\n")[0]}`));
  }
  return parseConfig(doc.toJS(), file, env);
}
