/** Budgets on a real store: limits per measure, scopes, the sliding hour, and surviving a restart. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, mock } from "node:test";
import type { BudgetConfig } from "../../src/config/schema.js";
import { BudgetBook } from "../../src/core/budgets.js";
import { createLogger } from "../../src/core/logger.js";
import type { Principal } from "../../src/identity/principal.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

let root: string;
before(() => { root = mkdtempSync(join(tmpdir(), "pc-budgets-")); });
after(() => rmSync(root, { recursive: true, force: true }));

const logger = createLogger("silent");
const who = (sub: string, groups = ["agents"]): Principal => ({ sub, groups, iss: "dev", exp: 0, run: {} });
const budget = (b: Partial<BudgetConfig>): BudgetConfig => ({ per: "identity", action: "deny", ...b });

describe("budgets", () => {
  it("stops rows at the limit, per identity, and survives a restart", () => {
    const file = join(root, "b.db");
    const cfg = [budget({ name: "rows", rows_per_hour: 5 })];
    const book = new BudgetBook(new SqliteStore(file), () => cfg, logger);
    const m = book.meterFor(who("a"), "app");
    for (let i = 0; i < 5; i++) assert.equal(m.row(10), undefined);
    assert.deepEqual(m.row(10), { budget: "rows", scope: "identity:dev a", measure: "rows", limit: 5 });
    assert.equal(book.meterFor(who("b"), "app").row(10), undefined, "another identity has its own budget");
    book.close();
    const again = new BudgetBook(new SqliteStore(file), () => cfg, logger);
    assert.equal(again.meterFor(who("a"), "app").row(10)?.measure, "rows", "still spent after a restart");
    assert.equal(again.meterFor(who("a"), "app").admit([])?.measure, "rows", "and new operations are refused");
    again.close();
  });

  it("counts bytes, statements and distinct tables", () => {
    const cfg = [budget({ name: "mixed", bytes_per_hour: 100, statements_per_hour: 3, tables_per_hour: 2 })];
    const book = new BudgetBook(new SqliteStore(":memory:"), () => cfg, logger);
    const m = book.meterFor(who("a"), "app");
    assert.equal(m.row(60), undefined);
    assert.equal(m.row(50)?.measure, "bytes");
    assert.equal(m.admit(["public.t1"]), undefined);
    assert.equal(m.admit(["public.t1", "public.t2"]), undefined);
    assert.equal(m.admit(["public.t3"])?.measure, "tables");
    assert.equal(m.admit(["public.t1"]), undefined);
    assert.equal(m.admit([])?.measure, "statements");
    book.close();
  });

  it("shares a budget per group or per connection, and applies only where it matches", () => {
    const cfg = [
      budget({ name: "team", per: "group", groups: ["agents"], rows_per_hour: 2 }),
      budget({ name: "conn", per: "connection", connections: ["billing"], rows_per_hour: 1 }),
    ];
    const book = new BudgetBook(new SqliteStore(":memory:"), () => cfg, logger);
    assert.equal(book.meterFor(who("a"), "app").row(1), undefined);
    assert.equal(book.meterFor(who("b"), "app").row(1), undefined);
    assert.equal(book.meterFor(who("c"), "app").row(1)?.budget, "team", "the group's rows are shared");
    assert.equal(book.meterFor(who("x", ["ops"]), "app").empty, true, "no budget applies");
    assert.equal(book.meterFor(who("y", ["ops"]), "billing").row(1), undefined);
    assert.equal(book.meterFor(who("z", ["ops"]), "billing").row(1)?.budget, "conn");
    book.close();
  });

  it("slides: usage older than an hour no longer counts", () => {
    const now = Date.now();
    mock.timers.enable({ apis: ["Date"], now });
    try {
      const book = new BudgetBook(new SqliteStore(":memory:"), () => [budget({ name: "r", rows_per_hour: 2 })], logger);
      const m = book.meterFor(who("a"), "app");
      assert.equal(m.row(1), undefined);
      mock.timers.setTime(now + 30 * 60_000);
      assert.equal(m.row(1), undefined);
      assert.equal(m.row(1)?.measure, "rows");
      mock.timers.setTime(now + 61 * 60_000);
      assert.equal(m.row(1), undefined, "the first row has left the window");
      assert.equal(m.row(1)?.measure, "rows");
      book.close();
    } finally {
      mock.timers.reset();
    }
  });
});
