/** Bounded waits: a test must fail, not hang, when what it waits for never happens. */

/** What `p` gives, or "timed out" after `ms`. */
export function within<T>(ms: number, p: Promise<T>): Promise<T | "timed out"> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<"timed out">((resolve) => { timer = setTimeout(() => resolve("timed out"), ms); })]).finally(() => clearTimeout(timer));
}
