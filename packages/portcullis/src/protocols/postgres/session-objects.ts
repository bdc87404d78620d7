/**
 * What every stage that follows a session must agree on: the prepared statements and portals the
 * agent has named, and the protocol's rhythm of segments. A segment is what one ReadyForQuery
 * answers (a Query, a FunctionCall, or everything up to a Sync); the target answers segments in
 * order, so a stage can tell which of its bookkeeping entries an answer belongs to. One definition,
 * so that two stages can never disagree on which message ends a segment.
 */
import type { Frame } from "./framer.js";
import { MSG, decodeTarget } from "./messages.js";

/** Client messages each answered by exactly one ReadyForQuery. */
const ENDS_SEGMENT = new Set<number>([MSG.Query, MSG.Sync, MSG.FunctionCall]);

/** The client message types a stage must hand to `afterClient`. */
export const TRACKED_CLIENT_TYPES: readonly number[] = [MSG.Query, MSG.Sync, MSG.FunctionCall, MSG.Close];

export class SessionObjects<S, P> {
  /** Prepared statements by name ("" = unnamed); SQL PREPARE and protocol Parse share one namespace. */
  readonly statements = new Map<string, S>();
  /** Portals by name ("" = unnamed); SQL cursors and protocol Bind share one namespace. */
  readonly portals = new Map<string, P>();
  /** Segment of the client message being handled now (segments ended so far). */
  sent = 0;
  /** Segments the target has answered (ReadyForQuery seen). */
  done = 0;

  /** Call after a stage has handled a client frame: closes names, ends segments. */
  afterClient(frame: Frame): void {
    if (frame.type === MSG.Close) {
      const { kind, name } = decodeTarget(frame);
      (kind === "S" ? this.statements : this.portals).delete(name);
    } else if (ENDS_SEGMENT.has(frame.type)) {
      this.sent++;
    }
  }

  /** Call for every ReadyForQuery from the target. */
  readyForQuery(): void {
    this.done++;
  }
}
