/**
 * A bounded LRU of classifications keyed by query text with its numbers taken out (cache-key.ts):
 * an agent repeats the same few statements, and a repeated statement should cost a map lookup,
 * not a parse. Texts longer than
 * `maxKeyLength` are classified every time rather than pinning large strings in memory.
 */
import { literalFreeKey } from "./cache-key.js";
import { type StatementInfo, classifySql, normalizeSql } from "./classify.js";

export class ClassificationCache {
  private readonly entries = new Map<string, StatementInfo[]>();
  /** Literal-free forms (what audit and recordings store), keyed the same way: numbers never change them. */
  private readonly summaries = new Map<string, string | undefined>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 10_000, private readonly maxKeyLength = 16 * 1024) {}

  classify(sql: string): StatementInfo[] {
    if (sql.length > this.maxKeyLength) {
      this.misses++;
      return classifySql(sql);
    }
    const key = literalFreeKey(sql);
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      // Re-inserting moves the key to the end of Map's insertion order: the most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    this.misses++;
    const result = classifySql(sql);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, result);
    return result;
  }

  /** The text with every literal replaced by $n (libpg-query's normalize); undefined when it does not parse. */
  normalize(sql: string): string | undefined {
    if (sql.length > this.maxKeyLength) return normalizeSql(sql);
    const key = literalFreeKey(sql);
    if (this.summaries.has(key)) return this.summaries.get(key);
    const summary = normalizeSql(sql);
    if (this.summaries.size >= this.maxEntries) this.summaries.delete(this.summaries.keys().next().value!);
    this.summaries.set(key, summary);
    return summary;
  }

  get size(): number {
    return this.entries.size;
  }
}
