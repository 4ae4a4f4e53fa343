import { type ChildProcess, execFile, fork } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Commands run for their output (git, createrepo_c, rpmkeys), as `execFile` with UTF-8 output would run them,
 * either directly or, in the server, through a small child process that starts them: its process starter.
 *
 * Node starts a process by forking itself, and a fork copies the page tables of the whole process while its
 * event loop waits: in the server (150–250 MB resident) that took 20–60 ms a command on the 2-core VMs, and a
 * pipeline run of 10 packages spent 3.2 s of the server's event loop there (docs/benchmarks.md). The starter
 * is a Node process with nothing else loaded, so a fork costs what a small process's does, and the server's
 * event loop only sends a message and waits for the answer. If the starter dies, what it was running fails
 * and the next command starts a new one.
 */
export interface ExecOptions {
  readonly cwd?: string | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly maxBuffer?: number | undefined;
  readonly timeout?: number | undefined;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** What the starter answers: the command's output, and how it failed (as execFile's error says it). */
export interface StarterAnswer {
  readonly id: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly error: {
    readonly message: string;
    readonly code?: string | number | null | undefined;
    readonly signal?: string | null | undefined;
    readonly killed?: boolean | undefined;
  } | null;
}

/** What the server asks the starter to run. */
export interface StarterRequest {
  readonly id: number;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly opts: ExecOptions;
}

const direct = promisify(execFile);
let starter: ProcessStarter | null = null;

/** Run `cmd` and collect its output; rejects as promisified `execFile` does (code, signal, stdout, stderr). */
export function execText(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (starter) return starter.run(cmd, args, opts);
  return direct(cmd, [...args], { ...opts, encoding: 'utf8' });
}

/** From now on this process starts commands through a starter running `script` (starter-process.js). */
export function useProcessStarter(script: string): ProcessStarter {
  starter ??= new ProcessStarter(script);
  return starter;
}

/** Back to starting commands directly; the starter exits. */
export function stopProcessStarter(): void {
  starter?.close();
  starter = null;
}

/** Whether the starter keeps this process alive: only while it runs something for it (its answer or its exit). */
function hold(child: ChildProcess, on: boolean): void {
  if (on) {
    child.ref();
    child.channel?.ref();
  } else {
    child.unref();
    child.channel?.unref();
  }
}

export class ProcessStarter {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(r: ExecResult): void; reject(e: Error): void }>();

  constructor(private readonly script: string) {}

  /** The starter's process id (started on first use). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const child = this.started();
    const id = this.nextId++;
    return new Promise<ExecResult>((resolve, reject) => {
      if (this.pending.size === 0) hold(child, true);
      this.pending.set(id, { resolve, reject });
      const request: StarterRequest = { id, cmd, args, opts: { ...opts, env: opts.env ?? process.env } };
      child.send(request, (err) => {
        if (err) this.settle(id, (p) => p.reject(err));
      });
    });
  }

  close(): void {
    const child = this.child;
    this.child = null;
    child?.kill();
    this.failAll(new Error('the process starter was stopped'));
  }

  private started(): ChildProcess {
    if (this.child) return this.child;
    // No inspector, profiler or loader flags of the server: the starter loads one small module.
    const child = fork(this.script, [], {
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m: StarterAnswer) => this.answer(m));
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      this.failAll(new Error(`the process starter ${why}`));
    };
    child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    child.on('error', (err) => gone(`failed: ${err.message}`));
    // Idle, it must not keep the server's process alive, nor the other way round (it exits on disconnect).
    hold(child, false);
    this.child = child;
    return child;
  }

  private answer(m: StarterAnswer): void {
    this.settle(m.id, (p) => {
      if (!m.error) return p.resolve({ stdout: m.stdout, stderr: m.stderr });
      const err = Object.assign(new Error(m.error.message), {
        code: m.error.code,
        signal: m.error.signal,
        killed: m.error.killed,
        stdout: m.stdout,
        stderr: m.stderr,
      });
      p.reject(err);
    });
  }

  private settle(id: number, fn: (p: { resolve(r: ExecResult): void; reject(e: Error): void }) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0 && this.child) hold(this.child, false);
    fn(p);
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}
