/**
 * BackendKeyData the gateway hands to agents, mapped to the target backend each one stands for.
 * Agents never see a target's real key, and a cancel with a wrong secret cancels nothing.
 */
import { randomInt } from "node:crypto";

export interface CancelTarget {
  cancel(): Promise<void>;
}

export class CancelKeys {
  private readonly keys = new Map<number, { secretKey: number; target: CancelTarget }>();

  issue(target: CancelTarget): { processId: number; secretKey: number } {
    let processId: number;
    do processId = randomInt(1, 0x7fffffff); while (this.keys.has(processId));
    const secretKey = randomInt(-0x80000000, 0x7fffffff);
    this.keys.set(processId, { secretKey, target });
    return { processId, secretKey };
  }

  release(processId: number): void {
    this.keys.delete(processId);
  }

  /** The target behind a key, only when both halves match. */
  lookup(processId: number, secretKey: number): CancelTarget | undefined {
    const entry = this.keys.get(processId);
    return entry && entry.secretKey === secretKey ? entry.target : undefined;
  }
}
