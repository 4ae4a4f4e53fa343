import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The build sandbox: bubblewrap with the host read-only, no network, private /tmp, /var/tmp and /run, a new
 * PID namespace, a scrubbed environment, and only the task's work folder writable. Paths in `hide` (the
 * server's data folder, the agent's token, $HOME) are covered by empty read-only tmpfs mounts. See
 * ../shared/design/gotchas.md for why /var/tmp must be private for rpmbuild.
 */
export interface SandboxRun {
  readonly command: readonly string[];
  /** The host folder that is the only writable place; it appears inside the sandbox at SANDBOX_WORK. */
  readonly workDir: string;
  /** Working directory inside the sandbox (under SANDBOX_WORK). */
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  readonly hide: readonly string[];
  readonly timeoutMs: number;
  readonly memoryBytes: number;
  readonly onOutput: (chunk: Buffer) => void;
  readonly signal?: AbortSignal;
  /** Where the work folder appears inside (default SANDBOX_WORK). */
  readonly mountWorkAt?: string;
  /** Further bwrap arguments (read-only binds, capabilities), placed after the work folder's bind. */
  readonly extra?: readonly string[];
}

export type SandboxResult =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'killed'; readonly why: 'timeout' | 'cancelled' | 'signal'; readonly signal: string | null };

export const BWRAP = '/usr/bin/bwrap';
/**
 * Where the work folder appears inside the sandbox (in the private /tmp, since the host root is read-only
 * and has no /builddir). A fixed path, as mock's /builddir, keeps host paths out
 * of logs and packages, and makes paths compiled into binaries the same on every node.
 */
export const SANDBOX_WORK = '/tmp/builddir';

export function bwrapArgs(run: Pick<SandboxRun, 'workDir' | 'cwd' | 'env' | 'hostname' | 'hide' | 'command' | 'mountWorkAt' | 'extra'>): string[] {
  const args = [
    '--die-with-parent',
    '--new-session',
    '--unshare-net',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    run.hostname,
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
    '--tmpfs',
    '/var/tmp',
    '--tmpfs',
    '/run',
    '--tmpfs',
    '/dev/shm',
  ];
  // Hidden paths become empty tmpfs mounts, made read-only after the work folder is bound.
  const hidden = run.hide.filter((p) => existsSync(p));
  for (const p of hidden) args.push('--tmpfs', p);
  args.push('--bind', run.workDir, run.mountWorkAt ?? SANDBOX_WORK);
  args.push(...(run.extra ?? []));
  for (const p of hidden) args.push('--remount-ro', p);
  args.push('--chdir', run.cwd, '--clearenv');
  for (const [k, v] of Object.entries(run.env)) args.push('--setenv', k, v);
  args.push('--', ...run.command);
  return args;
}

export function runSandboxed(run: SandboxRun): Promise<SandboxResult> {
  const args = bwrapArgs(run);
  // RLIMIT_AS bounds the memory of everything in the sandbox (inherited by every child process).
  const child = spawn('prlimit', [`--as=${run.memoryBytes}`, '--', BWRAP, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout.on('data', run.onOutput);
  child.stderr.on('data', run.onOutput);
  let why: 'timeout' | 'cancelled' | null = null;
  const kill = (reason: 'timeout' | 'cancelled') => {
    if (why !== null) return;
    why = reason;
    // bwrap runs with --die-with-parent and the sandbox's PID 1 takes every process in the namespace with
    // it, so killing the process group here ends the whole tree.
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const timer = setTimeout(() => kill('timeout'), run.timeoutMs);
  const onAbort = () => kill('cancelled');
  run.signal?.addEventListener('abort', onAbort, { once: true });
  if (run.signal?.aborted) onAbort();
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      if (why !== null) resolve({ kind: 'killed', why, signal });
      else if (code === null) resolve({ kind: 'killed', why: 'signal', signal });
      else resolve({ kind: 'exited', code });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      run.onOutput(Buffer.from(`lenix: cannot start the sandbox: ${err.message}\n`));
      resolve({ kind: 'exited', code: 127 });
    });
  });
}
