import type { Command } from 'commander';
import { LenixError } from '../core/errors.js';
import type { SandboxLimits } from '../rpm/sandbox.js';

export interface LimitFlags {
  readonly timeout: string;
  readonly memory: string;
  readonly disk: string;
  readonly maxProcs: string;
  readonly maxOpenFiles: string;
  readonly logLimit: string;
}

/** The sandbox limits every agent that runs package code takes on its command line. */
export function addLimitOptions(cmd: Command, defaults: { timeoutSeconds: number }): Command {
  return cmd
    .option('--timeout <seconds>', 'wall-clock limit per run', String(defaults.timeoutSeconds))
    .option('--memory <mib>', 'memory limit per process (address space)', '8192')
    .option('--disk <mib>', "size of the sandbox's work folder (a tmpfs: writes past it fail)", '8192')
    .option('--max-procs <n>', 'processes per sandbox (fork bombs stop here)', '4096')
    .option('--max-open-files <n>', 'open files per process', '4096')
    .option('--log-limit <mib>', 'log bytes per run; past it the log is cut and the run fails', '64');
}

export function limitsFrom(o: LimitFlags): SandboxLimits {
  const num = (flag: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new LenixError('BAD_REQUEST', `${flag} must be a number ≥ ${min}`);
    return n;
  };
  const mib = 1024 * 1024;
  return {
    timeoutMs: num('--timeout', o.timeout, 1) * 1000,
    memoryBytes: Math.round(num('--memory', o.memory, 64) * mib),
    diskBytes: Math.round(num('--disk', o.disk, 16) * mib),
    processes: Math.floor(num('--max-procs', o.maxProcs, 16)),
    openFiles: Math.floor(num('--max-open-files', o.maxOpenFiles, 64)),
    logBytes: Math.round(num('--log-limit', o.logLimit, 1) * mib),
  };
}
