/** SQL statement kinds of SPEC §2, and which parse-tree statement types carry which kind. */

export const STATEMENT_KINDS = [
  "select", "insert", "update", "delete", "merge", "copy_in", "copy_out", "ddl", "truncate", "grant",
  "dynamic", "call", "transaction", "set", "prepare", "execute", "explain", "utility", "unknown",
] as const;

export type StatementKind = (typeof STATEMENT_KINDS)[number];

/** Statement node types whose kind does not follow from the generic rules in classify.ts. */
export const SIMPLE_KIND: Record<string, StatementKind> = {
  TransactionStmt: "transaction",
  VariableSetStmt: "set",
  VariableShowStmt: "utility",
  GrantStmt: "grant",
  GrantRoleStmt: "grant",
  AlterDefaultPrivilegesStmt: "grant",
  DoStmt: "dynamic",
  CallStmt: "call",
  LockStmt: "utility",
  VacuumStmt: "utility",
  ClusterStmt: "utility",
  ReindexStmt: "utility",
  CheckPointStmt: "utility",
  LoadStmt: "utility",
  DiscardStmt: "utility",
  ListenStmt: "utility",
  NotifyStmt: "utility",
  UnlistenStmt: "utility",
  FetchStmt: "utility",
  ClosePortalStmt: "utility",
  DeallocateStmt: "utility",
  ConstraintsSetStmt: "utility",
  ExecuteStmt: "execute",
  // Server configuration and extensions change what every session can do: schema-level changes.
  AlterSystemStmt: "ddl",
  CreateExtensionStmt: "ddl",
};
