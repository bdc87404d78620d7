/** The approvals service on a real SQLite store: restart recovery, expiry, grants, binding keys. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sqlOperationKeys } from "../../src/approvals/keys.js";
import { type ApprovalRequest, ApprovalService } from "../../src/approvals/service.js";
import type { AuditEntry } from "../../src/audit/chain.js";
import { createLogger } from "../../src/core/logger.js";
import type { Principal } from "../../src/identity/principal.js";
import { loadSqlParser } from "../../src/policy/sql/classify.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

let root: string;
before(async () => {
  await loadSqlParser();
  root = mkdtempSync(join(tmpdir(), "pc-approvals-"));
});
after(() => rmSync(root, { recursive: true, force: true }));

const logger = createLogger("silent");
/** Nobody revoked, nothing frozen. */
const OPEN = { revoked: () => false, frozen: () => false };
const who = (sub: string, groups: string[] = ["security"]): Principal => ({ sub, groups, iss: "dev", exp: 0, run: {} });

function request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    principal: who("agent-1", ["agents"]),
    session: "s1",
    connection: "app",
    rule: { name: "r", approvers: ["security"], min_approvals: 1, expires_after: 60_000, grant: { kind: "once" } },
    operation: { type: "sql", display: "delete from t where id = 1" },
    ...sqlOperationKeys("delete from t where id = 1"),
    mode: "defer",
    ...over,
  };
}

describe("approvals service", () => {
  it("after a restart, keeps deferred approvals and cancels held ones", () => {
    const file = join(root, "restart.db");
    const audit: AuditEntry[] = [];
    const first = new ApprovalService({ store: new SqliteStore(file), audit: (e) => audit.push(e), logger, admins: () => [], standing: OPEN });
    const deferred = first.request(request());
    const held = first.request(request({ mode: "hold" }));
    first.close();
    const second = new ApprovalService({ store: new SqliteStore(file), audit: (e) => audit.push(e), logger, admins: () => [], standing: OPEN });
    assert.equal(second.recover(), 1);
    assert.equal(second.get(deferred.id)!.state, "pending");
    assert.equal(second.get(held.id)!.state, "cancelled");
    // The surviving approval can still be decided, and its grant used once.
    second.decide(deferred.id, who("sec-1"), "approve");
    const keys = sqlOperationKeys("delete from t where id = 1");
    assert.ok(second.useGrant(who("agent-1", ["agents"]), "app", keys.onceKey, keys.windowKey));
    assert.equal(second.useGrant(who("agent-1", ["agents"]), "app", keys.onceKey, keys.windowKey), undefined);
    second.close();
    assert.deepEqual([...new Set(audit.map((e) => e.type))].sort(), ["approval_decided", "approval_requested", "approval_vote"]);
  });

  it("expires a pending approval after expires_after", async () => {
    const svc = new ApprovalService({ store: new SqliteStore(":memory:"), audit: () => {}, logger, admins: () => [], standing: OPEN, sweepMs: 10 });
    const a = svc.request(request({ rule: { ...request().rule, expires_after: 30 } }));
    for (let i = 0; i < 100 && svc.get(a.id)!.state === "pending"; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(svc.get(a.id)!.state, "expired");
    svc.close();
  });

  it("a window grant lets the same statement shape run with other values, for that identity and connection only", () => {
    const svc = new ApprovalService({ store: new SqliteStore(":memory:"), audit: () => {}, logger, admins: () => [], standing: OPEN });
    const a = svc.request(request({ rule: { ...request().rule, grant: { kind: "window", ms: 60_000 } } }));
    svc.decide(a.id, who("sec-1"), "approve");
    const other = sqlOperationKeys("DELETE FROM t WHERE id = 42");
    for (let i = 0; i < 3; i++) assert.ok(svc.useGrant(who("agent-1", ["agents"]), "app", other.onceKey, other.windowKey), "reusable within the window");
    assert.equal(svc.useGrant(who("agent-2", ["agents"]), "app", other.onceKey, other.windowKey), undefined);
    assert.equal(svc.useGrant(who("agent-1", ["agents"]), "billing", other.onceKey, other.windowKey), undefined);
    const shape = sqlOperationKeys("delete from t where name = 'x'");
    assert.equal(svc.useGrant(who("agent-1", ["agents"]), "app", shape.onceKey, shape.windowKey), undefined);
    svc.close();
  });

  it("single-use keys differ by value and by parameters; window keys by shape only", () => {
    const a = sqlOperationKeys("select 1 where 1 = 1");
    const b = sqlOperationKeys("select 1 where 1 = 2");
    assert.notEqual(a.onceKey, b.onceKey);
    assert.equal(a.windowKey, b.windowKey);
    assert.notEqual(sqlOperationKeys("select $1", Buffer.from([0, 1])).onceKey, sqlOperationKeys("select $1", Buffer.from([0, 2])).onceKey);
  });

  it("admins may decide; a denial closes at once with its reason", () => {
    const svc = new ApprovalService({ store: new SqliteStore(":memory:"), audit: () => {}, logger, admins: () => ["soc"], standing: OPEN });
    const a = svc.request(request({ rule: { ...request().rule, min_approvals: 3 } }));
    const d = svc.decide(a.id, who("responder", ["soc"]), "deny", "incident in progress");
    assert.equal(d.state, "denied");
    assert.equal(d.reason, "incident in progress");
    assert.throws(() => svc.decide(a.id, who("sec-1"), "approve"), /already denied/);
    svc.close();
  });
});
