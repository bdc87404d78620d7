/** Who is acting: the verified identity behind a session, as recorded everywhere. */

/** LangGraph run context. Signed claims and unsigned client hints are kept apart (SPEC §3). */
export interface RunContext {
  graph_id?: string;
  thread_id?: string;
  run_id?: string;
  node?: string;
}

export const RUN_CONTEXT_KEYS = ["graph_id", "thread_id", "run_id", "node"] as const;

export interface Principal {
  sub: string;
  groups: string[];
  iss: string;
  /** Token id; absent when the issuer does not set one. */
  jti?: string;
  /** Token expiry, seconds since the epoch. A session cannot outlive it. */
  exp: number;
  /** When the issuer's max_token_age runs out (iat + max_token_age), if earlier than exp: a session cannot outlive that either. */
  maxAgeUntil?: number;
  /** Run context from signed token claims. */
  run: RunContext;
}

/** Verifies a bearer token. Rejects with PortcullisError E_TOKEN_INVALID or E_TOKEN_EXPIRED. */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
  close?(): void;
}

export function memberOf(principal: Principal, groups: readonly string[]): boolean {
  return groups.some((g) => principal.groups.includes(g));
}

/** When a session of this identity must end, in ms since the epoch: its token's expiry or its issuer's max_token_age, whichever comes first. */
export function sessionDeadline(p: Principal): number {
  return Math.min(p.exp, p.maxAgeUntil ?? Infinity) * 1000;
}
