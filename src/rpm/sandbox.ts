import { writeFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { startProcess } from '../exec/exec.js';
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
  const { inputDir, onOutput, signal, ...spec } = run;
  return startSandbox({ ...spec, input: inputDir !== undefined }).run({
    ...(inputDir === undefined ? {} : { inputDir }),
    onOutput,
    ...(signal ? { signal } : {}),
  });
}

/** What a sandbox started ahead of its task is given when the task comes. */
export interface SandboxTask {
  readonly inputDir?: string;
  readonly onOutput: (chunk: Buffer) => void;
  readonly signal?: AbortSignal;
}

/** A sandbox started ahead of its task: its preparation runs at once, its inputs and command wait for `run`. */
export interface StartedSandbox {
  /** Give it its task (once): the inputs, where its log goes (what it printed so far first); how it ended. */
  run(task: SandboxTask): Promise<SandboxResult>;
  /** Whether it ended before it was given its task (its preparation failed, or it was discarded). */
  readonly ended: boolean;
  /** Stop it without a task. */
  discard(): void;
}

/**
 * Start a sandbox before its task is known: bubblewrap, the limits and the `prepare` step run now; the inputs
 * (`input`: whether there will be any) are unpacked, and the command run, once `run` gives them. The wall-clock
 * limit counts from `run`. A run started and given its task at once is runSandboxed.
 */
export function startSandbox(
  run: Omit<SandboxRun, 'inputDir' | 'onOutput' | 'signal'> & { readonly input: boolean },
): StartedSandbox {
  const plan = bwrapArgs(run);
  const [cmd, ...pre] = [...launcher(run.identity), BWRAP];
  const stdio: ('pipe' | 'ignore')[] = [
    run.input ? 'pipe' : 'ignore',
    'pipe',
    'pipe',
    'pipe',
    'pipe',
    plan.mapsByAgent ? 'pipe' : 'ignore',
    plan.mapsByAgent ? 'pipe' : 'ignore',
    ...plan.data.map(() => 'pipe' as const),
  ];
  // Through the agent's process starter when it has one (exec/exec.ts): Node's own fork of an agent costs ~20 ms.
  const child = startProcess(cmd!, [...pre, ...plan.args], { stdio, detached: true });
  const fd = (n: number) => child.stdio[n] as (Readable & Writable) | null | undefined;

  let why: 'timeout' | 'cancelled' | 'log-limit' | null = null;
  const kill = (reason: 'timeout' | 'cancelled' | 'log-limit') => {
    if (why !== null) return;
    why = reason;
    // bwrap runs with --die-with-parent and the sandbox's PID 1 takes every process in the namespace with it,
    // so killing bwrap's process group ends the whole tree.
    child.kill('SIGKILL');
  };

  // What it prints before it has a task is kept (within the log limit) and handed over with the task.
  const early: Buffer[] = [];
  let write: (chunk: Buffer) => void = (chunk) => {
    early.push(chunk);
  };
  let logged = 0;
  const onLog = (chunk: Buffer) => {
    if (why === 'log-limit') return;
    const room = run.limits.logBytes - logged;
    if (chunk.length <= room) {
      logged += chunk.length;
      write(chunk);
      return;
    }
    if (room > 0) write(chunk.subarray(0, room));
    logged = run.limits.logBytes;
    write(
      Buffer.from(
        `\nlenix: the log reached its limit of ${run.limits.logBytes} bytes; output cut here and the run stopped\n`,
      ),
    );
    kill('log-limit');
  };
  fd(1)!.on('data', onLog);
  fd(2)!.on('data', onLog);
  for (const n of [0, FD_BLOCK, ...plan.data.map((_, i) => FD_ETC + i)]) fd(n)?.on('error', () => undefined);

  // Files made from texts (generated /etc files, the run's own): bwrap reads each whole during set-up.
  for (const [i, text] of plan.data.entries()) fd(FD_ETC + i)!.end(text);

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
          onLog(Buffer.from(`lenix: cannot map the sandbox's ids: ${err.message}\n`));
          kill('cancelled');
        });
    };
    fd(FD_INFO)!.on('data', onInfo);
  }

  // Read from the start, so that nothing the sandbox writes waits on a full pipe; settled, never left unhandled.
  const outputs = settle(
    run.output
      ? readSandboxOutput(fd(FD_OUTPUT)!, run.output.to, run.output.accept, run.limits.diskBytes)
      : drain(fd(FD_OUTPUT)!),
  );
  let status = '';
  fd(FD_STATUS)!.on('data', (d: Buffer) => {
    if (status.length < 256) status += d.toString('utf8');
  });

  let ended = false;
  let startError: Error | null = null;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      ended = true;
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      ended = true;
      startError = err;
      resolve({ code: 127, signal: null });
    });
  });
  let given = false;

  return {
    get ended() {
      return ended;
    },
    discard: () => kill('cancelled'),
    async run(task) {
      if (given) throw new Error('a started sandbox runs one task');
      given = true;
      write = task.onOutput;
      for (const chunk of early.splice(0)) task.onOutput(chunk);
      const inputDone = settle(
        task.inputDir !== undefined && run.input ? createSandboxInput(task.inputDir, fd(0)!) : Promise.resolve(),
      );
      if (task.inputDir === undefined && run.input) fd(0)!.end();
      const timer = setTimeout(() => kill('timeout'), run.limits.timeoutMs);
      const onAbort = () => kill('cancelled');
      task.signal?.addEventListener('abort', onAbort, { once: true });
      if (task.signal?.aborted) onAbort();
      const { code, signal } = await closed;
      clearTimeout(timer);
      task.signal?.removeEventListener('abort', onAbort);
      if (startError) {
        task.onOutput(Buffer.from(`lenix: cannot start the sandbox: ${(startError as Error).message}\n`));
        return { kind: 'exited', code: 127, diskFull: false, outputs: [] };
      }
      const [input, out] = await Promise.all([inputDone, outputs]);
      if (why !== null) return { kind: 'killed', why, signal };
      if (code === null) return { kind: 'killed', why: 'signal', signal };
      const m = /rc=(\d+) avail=(-?\d+)/.exec(status);
      const diskFull =
        m !== null &&
        Number(m[1]) !== 0 &&
        Number(m[2]) >= 0 &&
        Number(m[2]) < Math.min(1024 ** 2, run.limits.diskBytes / 100);
      if (input.status === 'rejected')
        task.onOutput(Buffer.from(`lenix: inputs not delivered: ${(input.reason as Error).message}\n`));
      // A refused output stream also fails the wrapper's tar (the agent stopped reading): say why it was refused.
      if (out.status === 'rejected') {
        task.onOutput(Buffer.from(`lenix: outputs refused: ${(out.reason as Error).message}\n`));
        return { kind: 'exited', code: code === 0 ? 126 : code, diskFull, outputs: [] };
      }
      return { kind: 'exited', code, diskFull, outputs: code === 0 ? out.value : [] };
    },
  };
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
