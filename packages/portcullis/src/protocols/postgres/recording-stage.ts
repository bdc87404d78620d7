/**
 * Recording on the PostgreSQL wire. The stage sits nearest the agent, so on the way out it sees
 * exactly what the agent receives: rows after masking, refusals after the policy stage rewrote
 * them. Results are paired with operations in protocol order: the policy stage reports each
 * operation the target will answer (Query, Execute, FunctionCall, a refused Parse or Bind), and
 * the target answers them in that order. After an error in an extended-protocol segment the
 * target skips everything up to Sync, so those operations get no result of their own.
 */
import type { Session } from "../../core/sessions.js";
import type { ResultCapture } from "../../recording/result-capture.js";
import type { Frame } from "./framer.js";
import { MSG, decodeErrorFields } from "./messages.js";
import type { MessageStage, Verdict } from "./relay.js";
import { dataRowValues, decodeRowDescription } from "./rows.js";

const T = {
  RowDescription: 0x54, DataRow: 0x44, CommandComplete: 0x43, EmptyQuery: 0x49, PortalSuspended: 0x73,
  ErrorResponse: 0x45, ReadyForQuery: 0x5a, CopyOut: 0x48, CopyData: 0x64, NoticeResponse: 0x4e,
  Notification: 0x41, FunctionCallResponse: 0x56,
} as const;

interface Pending {
  op: number;
  /** Extended protocol: answered by exactly one completion. Otherwise (Query, FunctionCall): until ReadyForQuery. */
  extended: boolean;
}

/** Sync marks where the target stops skipping after an error. */
const SYNC = "sync" as const;

export interface RecordingStage extends MessageStage {
  /** Hand this to the policy stage: operations in forwarding order. */
  onOperation(op: number, extended: boolean): void;
}

export function recordingStage(session: Session): RecordingStage {
  const queue: (Pending | typeof SYNC)[] = [];
  let capture: ResultCapture | undefined;
  let columns: string[] | undefined;

  const head = (): Pending | undefined => {
    const h = queue[0];
    return h === undefined || h === SYNC ? undefined : h;
  };

  const current = (): ResultCapture => {
    capture ??= session.captureResult();
    return capture!;
  };

  const finish = (extra: { tag?: string; error?: { code: string; message: string } }): void => {
    const h = head();
    const c = current();
    session.recordResult(c.finish({ ...(h ? { op: h.op } : {}), ...(columns ? { columns } : {}), ...extra }));
    capture = undefined;
    columns = undefined;
    if (h?.extended) queue.shift();
  };

  // A result the session's end cut short (a budget, a kill) is still recorded: what left, left.
  session.beforeEnd(() => {
    if (capture && capture.count > 0) finish({ error: { code: "", message: "the session ended before the result was complete" } });
  });

  const fromServer = (frame: Frame): Verdict | undefined => {
    switch (frame.type) {
      case T.RowDescription:
        columns = decodeRowDescription(frame).map((f) => f.name);
        capture = session.captureResult();
        break;
      case T.DataRow:
        current().add(frame.raw, () => dataRowValues(frame).map(printable));
        break;
      case T.CopyOut:
        columns = undefined;
        capture = session.captureResult();
        break;
      case T.CopyData:
        current().add(frame.raw, () => [printable(frame.raw.subarray(5))]);
        break;
      case T.CommandComplete:
        finish({ tag: frame.raw.toString("utf8", 5, frame.raw.length - 1) });
        break;
      case T.EmptyQuery:
        finish({ tag: "" });
        break;
      case T.PortalSuspended:
        finish({ tag: "suspended" });
        break;
      case T.FunctionCallResponse:
        finish({ tag: "function call" });
        break;
      case T.ErrorResponse: {
        const fields = decodeErrorFields(frame);
        const wasExtended = head()?.extended ?? false;
        finish({ error: { code: fields.get("C") ?? "", message: fields.get("M") ?? "" } });
        // The target skips the rest of the segment: those operations have no answer.
        if (wasExtended) while (queue.length > 0 && queue[0] !== SYNC) queue.shift();
        break;
      }
      case T.ReadyForQuery:
        capture = undefined;
        columns = undefined;
        // One segment ends: drop through its terminator (a Sync or a Query/FunctionCall).
        while (queue.length > 0) {
          const e = queue.shift()!;
          if (e === SYNC || !e.extended) break;
        }
        break;
      case T.NoticeResponse:
        session.recordMessage({ e: "notice", text: decodeErrorFields(frame).get("M") ?? "" });
        break;
      case T.Notification: {
        const b = frame.raw;
        const chEnd = b.indexOf(0, 9);
        session.recordMessage({ e: "notification", text: `${b.toString("utf8", 9, chEnd)}: ${b.toString("utf8", chEnd + 1, b.length - 1)}` });
        break;
      }
    }
    return undefined;
  };

  return {
    onOperation: (op, extended) => {
      queue.push({ op, extended });
    },
    fromClient: () => {
      queue.push(SYNC);
      return undefined;
    },
    clientTypes: [MSG.Sync],
    fromServer,
    serverTypes: Object.values(T),
  };
}

/** Text values as they are; binary ones (and invalid UTF-8) as \x hex, PostgreSQL's bytea form. */
function printable(v: Buffer | null): string | null {
  if (v === null) return null;
  const s = v.toString("utf8");
  // eslint-disable-next-line no-control-regex
  if (s.includes("\uFFFD") || /[\x00-\x08\x0e-\x1f]/.test(s)) return `\\x${v.toString("hex")}`;
  return s;
}
