/** CPU time of other processes from /proc (Linux), for the benchmarks' "CPU per request" columns. */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

let ticksPerSecond: number | undefined;

/** sysconf(_SC_CLK_TCK): the unit of /proc/<pid>/stat's utime and stime (100 almost everywhere). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** user + system CPU time of one process (all its threads), µs; undefined when it is gone or /proc is missing. */
export function processCpuUs(pid: number): number | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime → indexes 11, 12.
  const ticks = Number(f[11]) + Number(f[12]);
  return Number.isFinite(ticks) ? (ticks / clockTicksPerSecond()) * 1e6 : undefined;
}

/** Direct children of `pid`: /proc/<pid>/task/*\/children where the kernel has it, else a scan of /proc. */
export function childPids(pid: number): number[] {
  try {
    const pids: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/)) if (c) pids.push(Number(c));
    }
    return pids;
  } catch {
    const pids: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const f = statFields(Number(name));
      if (f && Number(f[1]) === pid) pids.push(Number(name));
    }
    return pids;
  }
}
