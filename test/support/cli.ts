import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const BIN = fileURLToPath(new URL('../../../bin/lenix.js', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Run the real CLI and collect its output and exit code (never throws on a non-zero exit). */
export async function lenix(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A long-running CLI process whose stdout is watched for a line. */
export class Proc {
  readonly child: ChildProcess;
  out = '';
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  private exited: Promise<number | null>;

  constructor(args: string[], env: NodeJS.ProcessEnv, logFile?: string) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (d: Buffer) => {
      this.out += d.toString();
      for (const w of [...this.waiters]) {
        const m = w.re.exec(this.out);
        if (m) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(m);
        }
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    if (logFile) void mkdir(path.dirname(logFile), { recursive: true });
  }

  /** Wait for output matching `re`; fails if the process exits first. */
  waitFor(re: RegExp): Promise<RegExpExecArray> {
    const m = re.exec(this.out);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      this.waiters.push({ re, resolve });
      void this.exited.then((code) =>
        reject(new Error(`process exited (${code}) before printing ${re}:\n${this.out.slice(-3000)}`)),
      );
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  wait(): Promise<number | null> {
    return this.exited;
  }
}

/** A git repository made from a map of files, committed with a fixed date (so commits are reproducible). */
export async function gitRepo(dir: string, files: Record<string, string>, message = 'init'): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@lenix.invalid',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@lenix.invalid',
    GIT_AUTHOR_DATE: '2026-11-01T00:00:00Z',
    GIT_COMMITTER_DATE: '2026-11-01T00:00:00Z',
  };
  await run('git', ['init', '-q', '-b', 'main'], { cwd: dir, env }).catch(() => undefined);
  await run('git', ['add', '-A'], { cwd: dir, env });
  await run('git', ['-c', 'commit.gpgsign=false', 'commit', '-q', '--allow-empty', '-m', message], { cwd: dir, env });
  const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd: dir });
  return stdout.trim();
}

/** A minimal spec whose %build runs `build` (shell); noarch unless `arch` is set. */
export function specWith(name: string, build: string, opts: { noarch?: boolean; extra?: string } = {}): string {
  return `Name: ${name}
Version: 1.0
Release: 1
Summary: Lenix test package ${name}
License: MIT
${opts.noarch === false ? '' : 'BuildArch: noarch\n'}${opts.extra ?? ''}
%description
Test package.

%build
${build}

%install
mkdir -p %{buildroot}/usr/share/${name}
echo ok > %{buildroot}/usr/share/${name}/ok

%files
/usr/share/${name}/ok

%changelog
* Sun Nov 01 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- Test package
`;
}

/** Poll `fn` until it returns a value (every 100 ms), or fail naming `what` after `ms`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  ms = 120_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
