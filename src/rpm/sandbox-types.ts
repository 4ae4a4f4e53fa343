import type { SandboxIdentity } from './sandbox-identity.js';

/** The limits and the description of one sandbox run, and how it ended (sandbox.ts runs it). */

export interface SandboxLimits {
  /** Wall-clock limit; the whole process tree is killed when it passes. */
  readonly timeoutMs: number;
  /** RLIMIT_AS of every process inside. */
  readonly memoryBytes: number;
  /** Size of the only writable file system (the tmpfs at /tmp holding the work folder). */
  readonly diskBytes: number;
  /** RLIMIT_NPROC: processes of the sandbox's host user (a fork bomb stops there). */
  readonly processes: number;
  /** RLIMIT_NOFILE of every process inside. */
  readonly openFiles: number;
  /** Log bytes (stdout and stderr together); past this the output is cut and the run stopped. */
  readonly logBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  timeoutMs: 3_600_000,
  memoryBytes: 8 * 1024 ** 3,
  diskBytes: 8 * 1024 ** 3,
  processes: 4096,
  openFiles: 4096,
  logBytes: 64 * 1024 ** 2,
};

export interface SandboxRun {
  readonly identity: SandboxIdentity;
  readonly limits: SandboxLimits;
  /**
   * 'user': an unprivileged uid inside, no capabilities, no further user namespaces (builds, spec parsing).
   * 'root': uid 0 inside, with capabilities that reach only the sandbox's own user namespace, whose ids map to
   * the unprivileged host user and its subordinate ids (the test root: overlay mounts, chroot, chown).
   */
  readonly inside: 'user' | 'root';
  /** Run in SANDBOX_WORK once the inputs are unpacked there under `in/`. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  /**
   * Where the sandbox's /usr (with the /bin, /lib, ... links) and the non-secret /etc files come from: the host
   * ('/', the default) or a system root folder, such as a foreign-architecture root whose programs the kernel runs
   * through qemu-user (binfmt_misc with the F flag, so nothing of qemu needs to be inside).
   */
  readonly systemRoot?: string;
  /** Host folders bound read-only at these paths under /run (a tester's foreign root for dnf --installroot). */
  readonly binds?: readonly { readonly from: string; readonly to: `/run/${string}` }[];
  /** Files made from these texts, read-only at these paths under /run (the caller's own data, never a host path). */
  readonly files?: Readonly<Record<`/run/${string}`, string>>;
  /**
   * The caller's own bash, run in SANDBOX_WORK before the inputs are unpacked and before anything of the command
   * runs, with the command's capabilities: a sandbox started ahead of its task (startSandbox) readies itself
   * (a test root mounts its root) while it waits for the task's inputs.
   */
  readonly prepare?: string;
  /** A host folder the caller filled itself; streamed in as a tar and unpacked at SANDBOX_WORK/in. */
  readonly inputDir?: string;
  /** After a successful run, regular files under `from` (inside) are written flat into the host folder `to`. */
  readonly output?: { readonly from: string; readonly to: string; readonly accept: (name: string) => boolean };
  readonly onOutput: (chunk: Buffer) => void;
  readonly signal?: AbortSignal;
}

/** One line for logs. */
export function describeLimits(l: SandboxLimits): string {
  const mib = (n: number) => `${Math.round(n / 1024 ** 2)} MiB`;
  return `${Math.round(l.timeoutMs / 1000)} s, memory ${mib(l.memoryBytes)}, disk ${mib(l.diskBytes)}, ${l.processes} processes, ${l.openFiles} open files, log ${mib(l.logBytes)}`;
}

export type SandboxResult =
  | { readonly kind: 'exited'; readonly code: number; readonly diskFull: boolean; readonly outputs: readonly string[] }
  | {
      readonly kind: 'killed';
      readonly why: 'timeout' | 'cancelled' | 'signal' | 'log-limit';
      readonly signal: string | null;
    };
