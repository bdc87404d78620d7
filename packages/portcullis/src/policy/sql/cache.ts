/**
 * A bounded LRU of classifications keyed by query text with its numbers taken out (cache-key.ts):
 * an agent repeats the same few statements, and a repeated statement should cost a map lookup,
 * not a parse. The literal-free form that audit and recordings store is kept in the same entry
 * (numbers never change it either), made on first use. Texts longer than `maxKeyLength` are
 * classified every time rather than pinning large strings in memory.
 */
import { literalFreeKey } from "./cache-key.js";
import { type StatementInfo, classifySql, normalizeSql } from "./classify.js";

/** What a statement text is, as the policy stage needs it: computed once per distinct key. */
export interface SqlFacts {
  infos: StatementInfo[];
  /** The text with every literal replaced by $n (libpg-query's normalize); undefined when it does not parse. */
  summary: string | undefined;
}

interface Entry {
  infos: StatementInfo[];
  summary?: string | null;
}

export class ClassificationCache {
  private readonly entries = new Map<string, Entry>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 10_000, private readonly maxKeyLength = 16 * 1024) {}

  classify(sql: string): StatementInfo[] {
    return this.entry(sql).infos;
  }

  /** Classification and literal-free summary with one key computation and one lookup. */
  facts(sql: string): SqlFacts {
    const e = this.entry(sql);
    // null: normalised before and it did not parse.
    if (e.summary === undefined) e.summary = normalizeSql(sql) ?? null;
    return { infos: e.infos, summary: e.summary ?? undefined };
  }

  get size(): number {
    return this.entries.size;
  }

  private entry(sql: string): Entry {
    if (sql.length > this.maxKeyLength) {
      this.misses++;
      return { infos: classifySql(sql) };
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
    const created: Entry = { infos: classifySql(sql) };
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, created);
    return created;
  }
}
