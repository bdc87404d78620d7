/**
 * Budgets and bulk-read detection on the PostgreSQL wire. Each DataRow and COPY row is charged to
 * the session's budgets before it is forwarded; the row that would cross a budget is not sent and
 * the session ends with FATAL PX004. Ending the session, rather than answering an error and going
 * on, is deliberate: the target is still producing that result (and may be executing the rest of a
 * pipeline), so the agent's and the target's views of the session could no longer agree.
 * A result larger than `bulk_read_rows` raises a `bulk_read` alert when it completes (its tag
 * carries the count, so no per-row work is needed for that).
 */
import { PortcullisError } from "../../errors.js";
import type { Session } from "../../core/sessions.js";
import type { Exceeded } from "../../core/budgets.js";
import type { Frame } from "./framer.js";
import type { MessageStage, Verdict } from "./relay.js";

const T = { DataRow: 0x44, CopyData: 0x64, CommandComplete: 0x43 } as const;

export interface ContainmentStageDeps {
  session: Session;
  bulkReadRows: () => number;
  onExceeded: (over: Exceeded) => void;
  onBulkRead: (rows: number, tag: string) => void;
}

export function containmentStage(deps: ContainmentStageDeps): MessageStage {
  const meter = deps.session.meter;
  const fromServer = (frame: Frame): Verdict | undefined => {
    if (frame.type === T.CommandComplete) {
      const tag = frame.raw.toString("latin1", 5, frame.raw.length - 1);
      const rows = Number(/(\d+)$/.exec(tag)?.[1] ?? 0);
      if (/^(SELECT|COPY|FETCH)\b/.test(tag) && rows > deps.bulkReadRows()) deps.onBulkRead(rows, tag.split(" ")[0]!);
      return undefined;
    }
    const over = meter?.row(frame.raw.length);
    if (over) {
      deps.onExceeded(over);
      throw new PortcullisError("E_BUDGET_EXCEEDED", `portcullis: budget ${over.budget} exceeded (${over.measure} per hour: ${over.limit}); the rest of the result was not sent`);
    }
    return undefined;
  };
  return {
    fromServer,
    // Rows are only looked at when a budget applies; completions always (cheap: one per result).
    serverTypes: meter ? [T.DataRow, T.CopyData, T.CommandComplete] : [T.CommandComplete],
  };
}
