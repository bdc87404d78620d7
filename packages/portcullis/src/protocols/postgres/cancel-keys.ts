/**
 * BackendKeyData the gateway hands to agents, mapped to the target backend each one stands for.
 * Agents never see a target's real key, and a cancel with a wrong secret cancels nothing. Gateway
 * pids lie above Linux's largest pid (pid_max is at most 2^22), so one used where a real pid is
 * expected names no backend of the target; backend-pids.ts maps them for the agent.
 */
import { randomInt } from "node:crypto";

export interface CancelTarget {
  cancel(): Promise<void>;
}

/** Whose backend a key stands for: the target (host:port), the identity, and the backend's real pid. */
export interface KeyOwner {
  target: string;
  identity: string;
  realPid: number;
}

/** PID_MAX_LIMIT on 64-bit Linux: no process id is larger. */
const LARGEST_REAL_PID = 4_194_304;

export class CancelKeys {
  private readonly keys = new Map<number, { secretKey: number; target: CancelTarget; owner?: KeyOwner }>();
  /** Gateway pid by target and real pid. */
  private readonly byReal = new Map<string, number>();

  issue(target: CancelTarget, owner?: KeyOwner): { processId: number; secretKey: number } {
    let processId: number;
    do processId = randomInt(LARGEST_REAL_PID + 1, 0x7fffffff); while (this.keys.has(processId));
    const secretKey = randomInt(-0x80000000, 0x7fffffff);
    this.keys.set(processId, { secretKey, target, ...(owner ? { owner } : {}) });
    if (owner) this.byReal.set(`${owner.target}\0${owner.realPid}`, processId);
    return { processId, secretKey };
  }

  release(processId: number): void {
    const owner = this.keys.get(processId)?.owner;
    if (owner && this.byReal.get(`${owner.target}\0${owner.realPid}`) === processId) this.byReal.delete(`${owner.target}\0${owner.realPid}`);
    this.keys.delete(processId);
  }

  /** The target behind a key, only when both halves match. */
  lookup(processId: number, secretKey: number): CancelTarget | undefined {
    const entry = this.keys.get(processId);
    return entry && entry.secretKey === secretKey ? entry.target : undefined;
  }

  /** The real pid behind a gateway pid, only for a session of `identity` on `target`. */
  realPid(gatewayPid: number, target: string, identity: string): number | undefined {
    const owner = this.keys.get(gatewayPid)?.owner;
    return owner && owner.target === target && owner.identity === identity ? owner.realPid : undefined;
  }

  /** The gateway pid of the session whose backend on `target` is `realPid`. */
  gatewayPid(realPid: number, target: string): number | undefined {
    return this.byReal.get(`${target}\0${realPid}`);
  }
}
