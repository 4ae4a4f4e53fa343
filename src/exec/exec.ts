import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { STARTER_PY } from './starter-script.js';

/**
 * Commands run for their output (git, createrepo_c, rpmkeys, rpmsign, gpg), as `execFile` with UTF-8 output would
 * run them, either directly or through a small child process that starts them: the process starter.
 *
 * Node starts a process by forking itself, and a fork copies the page tables of the whole process while its
 * event loop waits: 8 ms for a bare Node process on the 2-core VMs, 17 ms for one of 350 MB, 20–60 ms in a busy
 * server; and there process creation is serialised across the cores, so every fork also holds up every other
 * process start on the machine (docs/benchmarks.md). The starter is Python, whose `subprocess` starts a command
 * with vfork (~2 ms, whatever the size of the process asking); the server and the agents only write a request
 * line and read the answer. If the starter dies, what it was running fails and the next command starts a new
 * one; where there is no python3, commands start directly.
 */
export interface ExecOptions {
  readonly cwd?: string | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly maxBuffer?: number | undefined;
  readonly timeout?: number | undefined;
  /** Written to the command's standard input (else it reads an empty one). */
  readonly input?: string | undefined;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** What the starter answers (starter-script.ts). */
interface StarterAnswer {
  readonly id: number;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly code?: number | null;
  readonly signal?: string | null;
  readonly killed?: boolean;
  readonly overflow?: 'stdout' | 'stderr' | null;
  readonly spawnError?: string;
  readonly errno?: number;
}

let starter: ProcessStarter | null = null;
/** Set once python3 could not be started: commands start directly from then on. */
let noPython = false;

/** Run `cmd` and collect its output; rejects as promisified `execFile` does (code, signal, stdout, stderr). */
export function execText(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (starter && !noPython) return starter.run(cmd, args, opts);
  return directly(cmd, args, opts);
}

/** `execFile` itself, with `input` on the command's standard input (closed at once without it). */
function directly(cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
  const { input, ...rest } = opts;
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, [...args], { ...rest, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/** From now on this process starts commands through the process starter (started on first use). */
export function useProcessStarter(): ProcessStarter {
  starter ??= new ProcessStarter();
  return starter;
}

/** Back to starting commands directly; the starter exits. */
export function stopProcessStarter(): void {
  starter?.close();
  starter = null;
}

/** Whether the starter keeps this process alive: only while it runs something for it (its answer or its exit). */
function hold(child: ChildProcess, on: boolean): void {
  // The pipes are sockets underneath (net.Socket), which is where ref and unref are.
  for (const h of [child, child.stdin, child.stdout] as ({ ref?(): void; unref?(): void } | null)[]) {
    if (on) h?.ref?.();
    else h?.unref?.();
  }
}

type Pending = {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly opts: ExecOptions;
  resolve(r: ExecResult): void;
  reject(e: Error): void;
};

export class ProcessStarter {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** The starter's process id (started on first use). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const child = this.started();
    const id = this.nextId++;
    return new Promise<ExecResult>((resolve, reject) => {
      if (this.pending.size === 0) hold(child, true);
      this.pending.set(id, { cmd, args, opts, resolve, reject });
      const request = {
        id,
        cmd,
        args,
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: opts.timeout,
        maxBuffer: opts.maxBuffer,
        input: opts.input,
      };
      child.stdin!.write(`${JSON.stringify(request)}\n`, (err) => {
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
    // -I: no user site, no PYTHON* variable; -S: no site module (nothing but the standard library is needed).
    const child = spawn('python3', ['-I', '-S', '-c', STARTER_PY], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin!.on('error', () => undefined);
    createInterface({ input: child.stdout! }).on('line', (line) => this.answer(JSON.parse(line) as StarterAnswer));
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      this.failAll(new Error(`the process starter ${why}`));
    };
    child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        // No python3 on this host: what was asked runs directly, and so does everything after.
        noPython = true;
        this.child = null;
        const all = [...this.pending];
        this.pending.clear();
        for (const [, p] of all) directly(p.cmd, p.args, p.opts).then(p.resolve, p.reject);
        return;
      }
      gone(`failed: ${err.message}`);
    });
    // Idle, it must not keep this process alive, nor the other way round (it exits when its stdin closes).
    hold(child, false);
    this.child = child;
    return child;
  }

  private answer(m: StarterAnswer): void {
    this.settle(m.id, (p) => {
      const stdout = m.stdout ?? '';
      const stderr = m.stderr ?? '';
      if (m.spawnError) {
        const err = Object.assign(new Error(`spawn ${p.cmd} ${m.spawnError}`), {
          code: m.spawnError,
          errno: -(m.errno ?? 0),
          syscall: `spawn ${p.cmd}`,
          path: p.cmd,
          spawnargs: [...p.args],
          cmd: [p.cmd, ...p.args].join(' '),
          stdout,
          stderr,
        });
        return p.reject(err);
      }
      const cmd = [p.cmd, ...p.args].join(' ');
      if (m.overflow) {
        const err = Object.assign(new RangeError(`${m.overflow} maxBuffer length exceeded`), {
          code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
          cmd,
          stdout,
          stderr,
        });
        return p.reject(err);
      }
      if (m.code === 0 && !m.signal) return p.resolve({ stdout, stderr });
      const err = Object.assign(new Error(`Command failed: ${cmd}\n${stderr}`), {
        code: m.code ?? null,
        killed: m.killed ?? false,
        signal: m.signal ?? null,
        cmd,
        stdout,
        stderr,
      });
      p.reject(err);
    });
  }

  private settle(id: number, fn: (p: Pending) => void): void {
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
