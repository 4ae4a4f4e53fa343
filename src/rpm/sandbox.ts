import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { createSandboxInput, readSandboxOutput } from './sandbox-io.js';
import {
  BWRAP,
  FD_BLOCK,
  FD_ETC,
  FD_INFO,
  FD_OUTPUT,
  FD_STATUS,
  bwrapArgs,
  launcher,
  subordinateMaps,
} from './sandbox-plan.js';
import type { SandboxResult, SandboxRun } from './sandbox-types.js';

export { launcher, SANDBOX_UID, SANDBOX_WORK } from './sandbox-plan.js';
export { DEFAULT_LIMITS, describeLimits } from './sandbox-types.js';
export type { SandboxLimits, SandboxResult, SandboxRun } from './sandbox-types.js';

/**
 * The sandbox for untrusted package code (spec parsing, rpmbuild, the test root). bubblewrap builds a new root
 * from almost nothing: the host's /usr read-only (with the /bin, /lib, ... links), a generated /etc of
 * non-secret files, a private /proc and /dev, and one writable file system, a size-limited tmpfs at /tmp that
 * holds the work folder. Nothing else of the host is mounted: not /, /home, /root, /var, /srv, /opt, mounted
 * volumes or the agent's own folders, so there is nothing to hide and nothing to uncover.
 *
 * It starts as an unprivileged host user (see sandbox-identity.ts) in new user, PID, network, IPC, UTS and
 * cgroup namespaces, so no process inside holds a capability on the host. Inputs come in as a tar stream on
 * stdin (prepared by the agent from files it wrote itself) and results go out as a tar stream on fd 3 that the
 * agent reads back as plain files: no process outside ever opens a path that package code could have made a
 * symbolic link. stdout and stderr are one pipe, so the log keeps the order in which things were written.
 */
export function runSandboxed(run: SandboxRun): Promise<SandboxResult> {
  const plan = bwrapArgs(run);
  const [cmd, ...pre] = [...launcher(run.identity), BWRAP];
  const stdio: ('pipe' | 'ignore')[] = [
    run.inputDir ? 'pipe' : 'ignore',
    'pipe',
    'pipe',
    'pipe',
    'pipe',
    plan.mapsByAgent ? 'pipe' : 'ignore',
    plan.mapsByAgent ? 'pipe' : 'ignore',
    ...plan.etc.map(() => 'pipe' as const),
  ];
  const child = spawn(cmd!, [...pre, ...plan.args], { stdio, detached: true });
  const fd = (n: number) => child.stdio[n] as (Readable & Writable) | null;

  let why: 'timeout' | 'cancelled' | 'log-limit' | null = null;
  const kill = (reason: 'timeout' | 'cancelled' | 'log-limit') => {
    if (why !== null) return;
    why = reason;
    // bwrap runs with --die-with-parent and the sandbox's PID 1 takes every process in the namespace with it,
    // so killing bwrap's process group ends the whole tree.
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };

  let logged = 0;
  const onLog = (chunk: Buffer) => {
    if (why === 'log-limit') return;
    const room = run.limits.logBytes - logged;
    if (chunk.length <= room) {
      logged += chunk.length;
      run.onOutput(chunk);
      return;
    }
    if (room > 0) run.onOutput(chunk.subarray(0, room));
    logged = run.limits.logBytes;
    run.onOutput(
      Buffer.from(
        `\nlenix: the log reached its limit of ${run.limits.logBytes} bytes; output cut here and the run stopped\n`,
      ),
    );
    kill('log-limit');
  };
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  for (const n of [0, FD_BLOCK, ...plan.etc.map((_, i) => FD_ETC + i)]) fd(n)?.on('error', () => undefined);

  // Generated /etc files: bwrap reads each whole during set-up.
  for (const [i, [, text]] of plan.etc.entries()) fd(FD_ETC + i)!.end(text);

  // The test root's id maps: bwrap reports its child's pid and waits until the maps are written.
  if (plan.mapsByAgent && run.identity.kind === 'system-user') {
    const identity = run.identity;
    let info = '';
    const onInfo = (d: Buffer) => {
      info += d.toString('utf8');
      const m = /"child-pid"\s*:\s*(\d+)/.exec(info);
      if (!m) return;
      fd(FD_INFO)!.off('data', onInfo);
      const maps = subordinateMaps(identity);
      void writeFile(`/proc/${m[1]}/uid_map`, maps.uid)
        .then(() => writeFile(`/proc/${m[1]}/gid_map`, maps.gid))
        .then(() => fd(FD_BLOCK)!.end('1'))
        .catch((err: Error) => {
          run.onOutput(Buffer.from(`lenix: cannot map the sandbox's ids: ${err.message}\n`));
          kill('cancelled');
        });
    };
    fd(FD_INFO)!.on('data', onInfo);
  }

  // Both settle on their own (a rejection is read after the process closes, never left unhandled).
  const inputDone = settle(run.inputDir ? createSandboxInput(run.inputDir, fd(0)!) : Promise.resolve());
  const outputs = settle(
    run.output
      ? readSandboxOutput(fd(FD_OUTPUT)!, run.output.to, run.output.accept, run.limits.diskBytes)
      : drain(fd(FD_OUTPUT)!),
  );
  let status = '';
  fd(FD_STATUS)!.on('data', (d: Buffer) => {
    if (status.length < 256) status += d.toString('utf8');
  });

  const timer = setTimeout(() => kill('timeout'), run.limits.timeoutMs);
  const onAbort = () => kill('cancelled');
  run.signal?.addEventListener('abort', onAbort, { once: true });
  if (run.signal?.aborted) onAbort();

  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      void Promise.all([inputDone, outputs]).then(([input, out]) => {
        if (why !== null) return resolve({ kind: 'killed', why, signal });
        if (code === null) return resolve({ kind: 'killed', why: 'signal', signal });
        const m = /rc=(\d+) avail=(-?\d+)/.exec(status);
        const diskFull =
          m !== null &&
          Number(m[1]) !== 0 &&
          Number(m[2]) >= 0 &&
          Number(m[2]) < Math.min(1024 ** 2, run.limits.diskBytes / 100);
        if (input.status === 'rejected')
          run.onOutput(Buffer.from(`lenix: inputs not delivered: ${(input.reason as Error).message}\n`));
        // A refused output stream also fails the wrapper's tar (the agent stopped reading): say why it was refused.
        if (out.status === 'rejected') {
          run.onOutput(Buffer.from(`lenix: outputs refused: ${(out.reason as Error).message}\n`));
          return resolve({ kind: 'exited', code: code === 0 ? 126 : code, diskFull, outputs: [] });
        }
        resolve({ kind: 'exited', code, diskFull, outputs: code === 0 ? out.value : [] });
      });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      run.onOutput(Buffer.from(`lenix: cannot start the sandbox: ${err.message}\n`));
      resolve({ kind: 'exited', code: 127, diskFull: false, outputs: [] });
    });
  });
}

function settle<T>(p: Promise<T>): Promise<PromiseSettledResult<T>> {
  return p.then(
    (value) => ({ status: 'fulfilled' as const, value }),
    (reason: unknown) => ({ status: 'rejected' as const, reason }),
  );
}

function drain(stream: Readable): Promise<string[]> {
  stream.resume();
  return Promise.resolve([]);
}
