/**
 * `portcullis approvals list|show|approve|deny`: through the running gateway's admin API, so the
 * gateway's checks apply (a revoked caller is refused, each caller sees only their approvals).
 */
import type { Command } from "commander";
import type { Approval } from "../approvals/approval.js";
import { clipped, printable } from "../approvals/display.js";
import { type ApiTarget, callApi } from "./api-client.js";
import { DEFAULT_CONFIG, action, printResult } from "./output.js";

/** As the admin API answers: `counted_approvals` leaves out the votes of since-revoked approvers. */
type View = Omit<Approval, "onceKey" | "windowKey"> & { counted_approvals?: number };

/** Approving votes that count (an older gateway does not say: all of them). */
const counted = (a: View) => a.counted_approvals ?? a.votes.filter((v) => v.decision === "approve").length;

/** One approval's heading; with `whole`, its operation in full (show), else shortened to a few lines (list). */
function line(a: View, whole = false): string {
  const votes = counted(a);
  // Escaped again here: an older gateway's approvals were stored unescaped.
  const op = printable(a.operation.display);
  const text = whole ? op : clipped(op, 400, a.id);
  return `${a.id}  ${a.state.padEnd(9)}  ${a.createdAt}  ${a.requester.sub} → ${a.connection}  rule ${a.rule}  ${votes}/${a.minApprovals}  ${a.mode}\n${text.replace(/^/gm, "    ")}`;
}

export function registerApprovals(program: Command): void {
  const approvals = program.command("approvals").description("operations waiting for a human (talks to the running gateway; token in PORTCULLIS_TOKEN)");
  const common = (c: Command) => c
    .option("-c, --config <file>", "configuration file (for gateway.http)", DEFAULT_CONFIG)
    .option("--url <url>", "the gateway's HTTP address, instead of reading the config")
    .option("--json", "print JSON");

  common(approvals.command("list").description("approvals, newest first").option("--state <s>", "pending (default), approved, denied, expired, cancelled, all", "pending"))
    .action(action(async (opts: ApiTarget & { state: string; json?: boolean }) => {
      const q = opts.state === "all" ? "" : `?state=${encodeURIComponent(opts.state)}`;
      const { approvals: list } = await callApi<{ approvals: View[] }>(opts, "GET", `/api/approvals${q}`);
      printResult(!!opts.json, list, list.length === 0 ? `no ${opts.state === "all" ? "" : `${opts.state} `}approvals` : list.map((a) => line(a)).join("\n"));
    }));

  common(approvals.command("show <id>").description("one approval with its votes"))
    .action(action(async (id: string, opts: ApiTarget & { json?: boolean }) => {
      const a = await callApi<View>(opts, "GET", `/api/approvals/${encodeURIComponent(id)}`);
      const voided = a.votes.filter((v) => v.decision === "approve").length - counted(a);
      const votes = a.votes.map((v) => `    ${v.decision} by ${v.sub} at ${v.at}${v.reason ? `: ${v.reason}` : ""}`).join("\n")
        + (voided > 0 ? `\n    (${voided} approving vote${voided > 1 ? "s" : ""} of revoked approvers no longer count)` : "");
      printResult(!!opts.json, a, `${line(a, true)}${votes ? `\n${votes}` : ""}${a.reason ? `\n    reason: ${a.reason}` : ""}`);
    }));

  for (const decision of ["approve", "deny"] as const) {
    common(approvals.command(`${decision} <id>`).description(`${decision} an approval`).option("--reason <r>", "why (recorded in the audit log)"))
      .action(action(async (id: string, opts: ApiTarget & { reason?: string; json?: boolean }) => {
        const a = await callApi<View>(opts, "POST", `/api/approvals/${encodeURIComponent(id)}/${decision}`, opts.reason ? { reason: opts.reason } : {});
        const approvedBy = counted(a);
        printResult(!!opts.json, a, a.state === "pending" ? `recorded: ${approvedBy} of ${a.minApprovals} approvals` : `approval ${a.id} ${a.state}`);
      }));
  }
}
