import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import type { Duplex } from 'node:stream';
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
  readonly pid?: number;
  readonly exited?: boolean;
}

let starter: ProcessStarter | null = null;
/** The system's Python (what dnf runs on), not whatever a PATH of the user's (pyenv shims) puts first. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Run `cmd` and collect its output; rejects as promisified `execFile` does (code, signal, stdout, stderr). */
export function execText(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (starter && !starter.unusable) return starter.run(cmd, args, opts);
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

/**
 * From now on this process starts commands through the process starter (started at once, in the background),
 * run by `python` (the system's python3 unless a test names another).
 */
export function useProcessStarter(python = PYTHON): ProcessStarter {
  starter ??= new ProcessStarter(python);
  starter.warm();
  return starter;
}

/** Back to starting commands directly; the starter exits. */
export function stopProcessStarter(): void {
  starter?.close();
  starter = null;
}

/**
 * How a started process's file descriptors 0, 1, 2, … are set up: a stream to this process, or ignored (as with
 * Node's spawn: /dev/null for 0, 1 and 2, a higher one left closed).
 */
export interface StartOptions {
  readonly stdio: readonly ('pipe' | 'ignore')[];
  /** In a process group (and session) of its own, which `kill` then signals as a whole. */
  readonly detached?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** A process started with streams on chosen fds: what the sandboxes need of a ChildProcess. */
export interface StartedProcess {
  /** Known once it has started. */
  readonly pid: number | undefined;
  /** The stream of each 'pipe' fd (null for 'ignore'). */
  readonly stdio: readonly (Duplex | null)[];
  /** After it has exited and every stream has closed. */
  on(event: 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  /** It could not be started (or its starter went away before it had). */
  on(event: 'error', listener: (err: Error) => void): this;
  /** Signal it (its whole group when detached); a signal sent before it has started is delivered when it has. */
  kill(signal: NodeJS.Signals): void;
}

/**
 * Start `cmd` with a stream on each 'pipe' fd, through the process starter when there is one and it is ready
 * (the streams are then Unix socket connections, which the started process reads and writes as it would pipes),
 * else with Node's spawn.
 */
export function startProcess(cmd: string, args: readonly string[], opts: StartOptions): StartedProcess {
  if (starter?.ready) return starter.start(cmd, args, opts);
  return new SpawnedProcess(cmd, args, opts);
}

/** Whether a process with this id runs on this machine (one of another user's answers EPERM: it runs). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pid: number, detached: boolean, signal: NodeJS.Signals): void {
  try {
    process.kill(detached ? -pid : pid, signal);
  } catch {
    /* already gone */
  }
}

/** startProcess without a starter: Node's spawn. */
class SpawnedProcess extends EventEmitter implements StartedProcess {
  private readonly child: ChildProcess;
  readonly stdio: readonly (Duplex | null)[];

  constructor(
    cmd: string,
    args: readonly string[],
    private readonly opts: StartOptions,
  ) {
    super();
    this.child = spawn(cmd, [...args], {
      stdio: [...opts.stdio],
      detached: opts.detached ?? false,
      env: opts.env ?? process.env,
    });
    this.stdio = this.child.stdio.map((s) => (s ?? null) as Duplex | null);
    this.child.on('close', (code, signal) => this.emit('close', code, signal));
    this.child.on('error', (err) => this.emit('error', err));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined) signalGroup(this.child.pid, this.opts.detached ?? false, signal);
  }
}

/** startProcess through the starter: its streams are connections to the starter's socket, handed to the process. */
class StarterProcess extends EventEmitter implements StartedProcess {
  pid: number | undefined;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private open = 0;
  private closed = false;
  private pendingSignal: NodeJS.Signals | null = null;

  constructor(
    readonly stdio: readonly (Socket | null)[],
    private readonly detached: boolean,
  ) {
    super();
    for (const s of stdio) {
      if (!s) continue;
      this.open++;
      // Errors end the stream; how the process ended comes from the starter.
      s.on('error', () => undefined);
      s.once('close', () => {
        this.open--;
        this.settle();
      });
    }
  }

  started(pid: number): void {
    this.pid = pid;
    if (this.pendingSignal) this.kill(this.pendingSignal);
  }

  exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.exit ??= { code, signal };
    // As Node's ChildProcess does at exit: a stream nobody reads is drained, so that it ends and closes.
    for (const s of this.stdio)
      if (s && s.readableFlowing === null && s.listenerCount('data') === 0 && s.listenerCount('readable') === 0)
        s.resume();
    this.settle();
  }

  failed(err: Error): void {
    // Started already: with its starter gone, it was killed (--die-with-parent) or runs on unwatched.
    if (this.pid !== undefined) {
      this.exited(null, 'SIGKILL');
      return;
    }
    for (const s of this.stdio) s?.destroy();
    this.closed = true;
    this.emit('error', err);
  }

  kill(signal: NodeJS.Signals): void {
    // Closed: it and every process that held its streams are gone, and its pid may be another's by now.
    if (this.closed) return;
    if (this.pid === undefined) this.pendingSignal = signal;
    else signalGroup(this.pid, this.detached, signal);
  }

  private settle(): void {
    if (this.closed || !this.exit || this.open > 0) return;
    this.closed = true;
    this.emit('close', this.exit.code, this.exit.signal);
  }
}

/** Whether the starter keeps this process alive: only while it runs something for it (its answer or its exit). */
function hold(child: ChildProcess, on: boolean): void {
  // The pipes are sockets underneath (net.Socket), which is where ref and unref are.
  for (const h of [child, child.stdin, child.stdout] as ({ ref?(): void; unref?(): void } | null)[]) {
    if (on) h?.ref?.();
    else h?.unref?.();
  }
}

/** What waits for the starter's answers to one request. */
interface Waiter {
  answer(m: StarterAnswer): void;
  fail(err: Error): void;
}

export class ProcessStarter {
  private child: ChildProcess | null = null;
  /** Set when python3 is missing or the starter ended before it was ready: commands start directly from then on. */
  unusable = false;
  private nextId = 1;
  private readonly pending = new Map<number, Waiter>();
  /** The abstract Unix socket the starter listens on for a started process's streams (pid-checked there). */
  private socketName = '';
  /** Whether it has answered that it listens. */
  ready = false;
  /** Whether it has said if it is ready (until then it keeps this process alive). */
  private told = false;
  private readyNow: (ok: boolean) => void = () => undefined;
  private readyWhen: Promise<boolean> = Promise.resolve(false);

  constructor(private readonly python: string) {}

  /** The starter's process id (started on first use). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start it now, so that it is ready when the first process is started. */
  warm(): void {
    this.started();
  }

  /** Once it listens for started processes' streams (true), or has failed before that (false). */
  whenReady(): Promise<boolean> {
    this.started();
    return this.readyWhen;
  }

  run(cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      this.send(
        this.nextId++,
        {
          cmd,
          args,
          env: opts.env ?? process.env,
          cwd: opts.cwd,
          timeout: opts.timeout,
          maxBuffer: opts.maxBuffer,
          input: opts.input,
        },
        {
          answer: (m) => {
            execAnswer(cmd, args, m, resolve, reject);
            return true;
          },
          fail: (err) => {
            // No python3 to run the starter: nothing ran, so what was asked runs directly. A starter that ran may
            // have started the command: it fails rather than runs twice.
            if ((err as { neverRan?: boolean }).neverRan) directly(cmd, args, opts).then(resolve, reject);
            else reject(err);
          },
        },
      );
    });
  }

  start(cmd: string, args: readonly string[], opts: StartOptions): StartedProcess {
    this.started();
    const id = this.nextId++;
    const streams = opts.stdio.map((kind, fd) => {
      if (kind !== 'pipe') return null;
      const s = connect(`\0${this.socketName}`);
      s.write(`${String(id).padStart(10)} ${String(fd).padStart(4)}\n`);
      return s;
    });
    const proc = new StarterProcess(streams, opts.detached ?? false);
    const pipes = opts.stdio.flatMap((kind, fd) => (kind === 'pipe' ? [fd] : []));
    const ignore = opts.stdio.flatMap((kind, fd) => (kind === 'pipe' ? [] : [fd]));
    this.send(
      id,
      { op: 'start', cmd, args, env: opts.env ?? process.env, pipes, ignore, detached: opts.detached ?? false },
      {
        answer: (m) => {
          if (m.spawnError) {
            proc.failed(Object.assign(new Error(`spawn ${cmd} ${m.spawnError}`), { code: m.spawnError }));
            return true;
          }
          if (m.pid !== undefined) {
            proc.started(m.pid);
            return false;
          }
          proc.exited(m.code ?? null, (m.signal ?? null) as NodeJS.Signals | null);
          return true;
        },
        fail: (err) => proc.failed(err),
      },
    );
    return proc;
  }

  close(): void {
    const child = this.child;
    this.child = null;
    this.ready = false;
    child?.kill();
    this.failAll(new Error('the process starter was stopped'));
  }

  private send(
    id: number,
    request: object,
    waiter: { answer(m: StarterAnswer): boolean | undefined; fail(err: Error): void },
  ): void {
    const child = this.started();
    hold(child, true);
    this.pending.set(id, {
      answer: (m) => {
        // An answer that is not the last (a started process's pid) keeps the request open.
        if (waiter.answer(m) !== false) this.done(id);
      },
      fail: waiter.fail,
    });
    child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`, (err) => {
      if (err) this.settle(id, (w) => w.fail(err));
    });
  }

  private started(): ChildProcess {
    if (this.child) return this.child;
    this.told = false;
    this.socketName = `lenix-starter-${process.pid}-${randomBytes(8).toString('hex')}`;
    this.readyWhen = new Promise((resolve) => {
      this.readyNow = resolve;
    });
    // -I: no user site, no PYTHON* variable; -S: no site module (nothing but the standard library is needed).
    const child = spawn(this.python, ['-I', '-S', '-c', STARTER_PY, this.socketName], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin!.on('error', () => undefined);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as StarterAnswer & { ready?: boolean };
      if (m.ready !== undefined) {
        if (this.child !== child) return;
        this.told = true;
        this.ready = m.ready;
        this.readyNow(m.ready);
        if (this.pending.size === 0) hold(child, false);
        return;
      }
      this.pending.get(m.id)?.answer(m);
    });
    let ran = false;
    child.once('spawn', () => {
      ran = true;
    });
    const gone = (why: string) => {
      if (this.child !== child) return;
      // One that never got as far as listening will not do better next time.
      if (!this.told) this.unusable = true;
      this.child = null;
      this.ready = false;
      this.readyNow(false);
      this.failAll(Object.assign(new Error(`the process starter ${why}`), { neverRan: !ran }));
    };
    child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    child.on('error', (err) => gone(`failed: ${err.message}`));
    // Idle, it must not keep this process alive, nor the other way round (it exits when its stdin closes); it
    // does until it has said whether it is ready, which whenReady waits for.
    this.child = child;
    return child;
  }

  private done(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && this.told && this.child) hold(this.child, false);
  }

  private settle(id: number, fn: (w: Waiter) => void): void {
    const w = this.pending.get(id);
    if (!w) return;
    this.done(id);
    fn(w);
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const w of all) w.fail(err);
  }
}

/** A command's answer as execFile would give it: its output, or an error with code, signal, stdout and stderr. */
function execAnswer(
  cmd: string,
  args: readonly string[],
  m: StarterAnswer,
  resolve: (r: ExecResult) => void,
  reject: (e: Error) => void,
): void {
  const stdout = m.stdout ?? '';
  const stderr = m.stderr ?? '';
  const line = [cmd, ...args].join(' ');
  if (m.spawnError) {
    reject(
      Object.assign(new Error(`spawn ${cmd} ${m.spawnError}`), {
        code: m.spawnError,
        errno: -(m.errno ?? 0),
        syscall: `spawn ${cmd}`,
        path: cmd,
        spawnargs: [...args],
        cmd: line,
        stdout,
        stderr,
      }),
    );
    return;
  }
  if (m.overflow) {
    reject(
      Object.assign(new RangeError(`${m.overflow} maxBuffer length exceeded`), {
        code: 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
        cmd: line,
        stdout,
        stderr,
      }),
    );
    return;
  }
  if (m.code === 0 && !m.signal) {
    resolve({ stdout, stderr });
    return;
  }
  reject(
    Object.assign(new Error(`Command failed: ${line}\n${stderr}`), {
      code: m.code ?? null,
      killed: m.killed ?? false,
      signal: m.signal ?? null,
      cmd: line,
      stdout,
      stderr,
    }),
  );
}
