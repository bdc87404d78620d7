/**
 * Masking state shared by the sessions of one connection: its column rules, detector masker and
 * the catalog side connection with its caches. Rebuilt when the config is reloaded.
 */
import type { LoadedConfig } from "../../config/load.js";
import type { PostgresConnection } from "../../config/schema.js";
import { ColumnRules } from "../../masking/columns.js";
import { compileTextMasker } from "../../masking/text-masker.js";
import { PgCatalog } from "./catalog.js";
import type { TextMask } from "./masking-stage.js";
import { ResultPlanner } from "./result-plan.js";

export interface ConnectionMasking {
  planner: ResultPlanner;
  text?: TextMask;
}

export class MaskingRegistry {
  private config?: LoadedConfig;
  private readonly byConnection = new Map<string, { masking: ConnectionMasking; catalog: PgCatalog }>();

  get(config: LoadedConfig, connection: PostgresConnection): ConnectionMasking {
    if (config !== this.config) {
      void this.close();
      this.config = config;
    }
    let entry = this.byConnection.get(connection.name);
    if (!entry) {
      const applicable = config.masking.filter((m) => !m.connections || m.connections.includes(connection.name));
      const rules = new ColumnRules(applicable, connection.name);
      const catalog = new PgCatalog(connection);
      const detectorRules = applicable.filter((m) => m.detectors && m.detectors.length > 0);
      const maskers = detectorRules.map((m) => compileTextMasker(m.detectors!, m.strategy, this.key));
      const text: TextMask | undefined = maskers.length === 0 ? undefined : {
        mask(value: string) {
          let out: string | undefined;
          for (const m of maskers) out = m.mask(out ?? value) ?? out;
          return out;
        },
      };
      const planner = new ResultPlanner(rules, catalog, text !== undefined, applicable.filter((m) => m.columns).map((m) => m.strategy));
      entry = { masking: { planner, ...(text ? { text } : {}) }, catalog };
      this.byConnection.set(connection.name, entry);
    }
    return entry.masking;
  }

  constructor(readonly key: Buffer) {}

  async close(): Promise<void> {
    const entries = [...this.byConnection.values()];
    this.byConnection.clear();
    await Promise.all(entries.map((e) => e.catalog.close()));
  }
}
