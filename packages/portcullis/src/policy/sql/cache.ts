/**
 * A bounded LRU of classifications keyed by query text: an agent repeats the same few statements,
 * and a repeated statement should cost a map lookup, not a parse. Texts longer than
 * `maxKeyLength` are classified every time rather than pinning large strings in memory.
 */
import { type StatementInfo, classifySql } from "./classify.js";

export class ClassificationCache {
  private readonly entries = new Map<string, StatementInfo[]>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 10_000, private readonly maxKeyLength = 16 * 1024) {}

  classify(sql: string): StatementInfo[] {
    const hit = this.entries.get(sql);
    if (hit) {
      this.hits++;
      // Re-inserting moves the key to the end of Map's insertion order: the most recently used.
      this.entries.delete(sql);
      this.entries.set(sql, hit);
      return hit;
    }
    this.misses++;
    const result = classifySql(sql);
    if (sql.length <= this.maxKeyLength) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(sql, result);
    }
    return result;
  }

  get size(): number {
    return this.entries.size;
  }
}
