import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** What the benchmarks measure with: the median of samples, and CPU time from /proc (Linux only). */

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/**
 * CPU seconds from /proc/PID/stat: the process's own (utime + stime) and what the children it has waited for
 * used (cutime + cstime: the commands it ran).
 */
export function processCpu(pid: number | 'self'): { own: number; children: number } {
  const f = statFields(pid);
  return { own: (f[11]! + f[12]!) / TICKS_PER_SECOND, children: (f[13]! + f[14]!) / TICKS_PER_SECOND };
}

/** The numeric fields of /proc/PID/stat after the command name (which may hold spaces): [0] state, [1] ppid, … */
function statFields(pid: number | 'self'): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
}

/**
 * CPU seconds of `pid`'s children still running, each with the commands it ran and waited for (the server's
 * process starter, exec/exec.ts: what it starts is counted in its own `children`, not the server's, until it exits).
 */
export function liveChildrenCpu(pid: number): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (statFields(Number(entry))[1] !== pid) continue;
      const { own, children } = processCpu(Number(entry));
      sum += own + children;
    } catch {
      // It ended between the listing and the read.
    }
  }
  return sum;
}

/**
 * Processes and threads started on the whole machine since it booted (`processes` in /proc/stat): the
 * difference over a run counts what the run started, other work on the machine included.
 */
export function forksSinceBoot(): number {
  const m = /^processes (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}
