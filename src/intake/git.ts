import { pipeline, Readable, Transform } from 'node:stream';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { LenixError } from '../core/errors.js';
import { execText, startProcess } from '../exec/exec.js';
import { hasControlCharacter } from '../core/ids.js';

/** git with no prompts and no hooks from the mirrored repository. */
// GIT_ALLOW_PROTOCOL keeps out transports such as ext:: that would run commands named in a URL.
const GIT_ENV = {
  ...process.env,
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: 'true',
  LC_ALL: 'C',
  GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
};

async function git(args: string[], opts: { cwd?: string; maxBuffer?: number } = {}): Promise<string> {
  try {
    const { stdout } = await execText('git', args, {
      cwd: opts.cwd,
      env: GIT_ENV,
      maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    // Say what failed: git's own fatal/error lines (the last line alone is often "could not read from remote").
    const e = err as { stderr?: string; message: string };
    const lines = (e.stderr ?? e.message)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const said = lines.filter((l) => /^(fatal|error|remote|ERROR):/i.test(l));
    throw new LenixError(
      'GIT_FAILED',
      `git ${args[0]} failed: ${(said.length > 0 ? said : lines.slice(-1)).join('; ').slice(0, 400) || 'no reason given'}`,
      { cause: err },
    );
  }
}

/**
 * What a commit holds never changes, so reads by full commit id are kept, least recently used first out, within
 * a byte budget: a build reads its tree, its spec and its archive several times (creation, the spec check, each
 * task's source tree, each ledger statement), and each `git` started costs the server's event loop 10–30 ms on
 * a loaded 2-core machine, more the larger the server's memory (docs/benchmarks.md, "Whole pipeline").
 */
class CommitReads {
  private readonly entries = new Map<string, string | Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** The largest value kept. */
  get largest(): number {
    return this.maxBytes / 8;
  }

  get(key: string): string | Buffer | undefined {
    const v = this.entries.get(key);
    if (v !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: string | Buffer): void {
    if (value.length > this.largest || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.bytes += value.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }
}

const commitReads = new CommitReads(64 * 1024 * 1024);

/** A full commit id (SHA-1 or SHA-256): what it names cannot change. Branches, tags and short ids can. */
const isCommitId = (ref: string) => /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(ref);

export interface CommitInfo {
  readonly sha: string;
  readonly tree: string;
  readonly committedAt: number;
  readonly subject: string;
}

/** A bare mirror of one source repository, under the server's data folder. */
export class GitMirror {
  constructor(readonly dir: string) {}

  static async create(url: string, dir: string): Promise<GitMirror> {
    await mkdir(path.dirname(dir), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await git(['clone', '--mirror', '--quiet', '--', url, dir]);
    return new GitMirror(dir);
  }

  async exists(): Promise<boolean> {
    return stat(path.join(this.dir, 'HEAD')).then(
      () => true,
      () => false,
    );
  }

  /** The branch the remote's HEAD points at (what `--branch` defaults to). */
  async defaultBranch(): Promise<string> {
    const out = await git(['symbolic-ref', '--short', 'HEAD'], { cwd: this.dir });
    return out.trim();
  }

  /** Bring the mirror up to date with its origin (a mirror clone's refspec: every ref, pruned). */
  async fetch(): Promise<void> {
    // `git fetch` itself, not `git remote update`, which only starts it (one process fewer a fetch).
    await git(['fetch', '--prune', '--quiet', 'origin'], { cwd: this.dir });
  }

  /** Resolve a branch, tag or commit id to the commit and its tree. */
  async resolve(ref: string): Promise<CommitInfo> {
    if (ref.startsWith('-') || ref.length > 256 || /\s/.test(ref) || hasControlCharacter(ref)) {
      throw new LenixError('REF_NOT_FOUND', `not a usable git ref: ${ref.slice(0, 80)}`);
    }
    let out: string;
    try {
      out = await this.kept(ref, 'commit', () =>
        git(['show', '-s', '--format=%H%n%T%n%ct%n%s', `${ref}^{commit}`, '--'], { cwd: this.dir }),
      );
    } catch (err) {
      throw new LenixError('REF_NOT_FOUND', `ref ${ref} does not exist in the source repository`, { cause: err });
    }
    const [sha, tree, ct, ...subject] = out.trimEnd().split('\n');
    if (!sha || !tree || !ct) throw new LenixError('GIT_FAILED', `git show gave no commit for ${ref}`);
    return { sha, tree, committedAt: Number(ct), subject: subject.join('\n') };
  }

  /** Commits on `branch` after `since` (oldest first), or just the tip when `since` is null. */
  async newCommits(branch: string, since: string | null): Promise<string[]> {
    const range = since ? `${since}..${branch}` : `${branch}`;
    const out = await git(['rev-list', '--reverse', ...(since ? [] : ['-n', '1']), range, '--'], { cwd: this.dir });
    return out.split('\n').filter(Boolean);
  }

  /** Read through the cache when `commit` is a full commit id. */
  private async kept(commit: string, what: string, read: () => Promise<string>): Promise<string> {
    if (!isCommitId(commit)) return read();
    const key = `${this.dir}\0${commit}\0${what}`;
    const hit = commitReads.get(key);
    if (typeof hit === 'string') return hit;
    const value = await read();
    commitReads.set(key, value);
    return value;
  }

  /** The commit's tree, recursively: one `<mode> <type> <object>\t<path>` line per entry, NUL-separated. */
  private tree(commit: string): Promise<string> {
    return this.kept(commit, 'ls-tree', () => git(['ls-tree', '-r', '-z', commit], { cwd: this.dir }));
  }

  async listFiles(commit: string): Promise<string[]> {
    return (await this.tree(commit))
      .split('\u0000')
      .filter(Boolean)
      .map((l) => l.slice(l.indexOf('\t') + 1));
  }

  /** Paths of the symbolic links in the commit's tree (mode 120000). */
  async listSymlinks(commit: string): Promise<string[]> {
    return (await this.tree(commit))
      .split('\u0000')
      .filter((l) => l.startsWith('120000 '))
      .map((l) => l.slice(l.indexOf('\t') + 1));
  }

  async readFile(commit: string, file: string, maxBytes = 4 * 1024 * 1024): Promise<string> {
    const out = await this.kept(commit, `show:${file}`, () =>
      git(['show', `${commit}:${file}`], { cwd: this.dir, maxBuffer: maxBytes }),
    );
    if (out.length > maxBytes)
      throw new LenixError('GIT_FAILED', `git show failed: ${file} is larger than ${maxBytes} bytes`);
    return out;
  }

  /** A tar of the tree at `commit` (git archive), streamed; kept once read whole when `commit` is a full id. */
  archive(commit: string): Readable {
    const key = `${this.dir}\0${commit}\0archive`;
    const hit = isCommitId(commit) ? commitReads.get(key) : undefined;
    if (Buffer.isBuffer(hit)) return Readable.from([hit], { objectMode: false });
    // Through the process starter when there is one (exec/exec.ts); -C, as it starts processes in its own folder.
    const child = startProcess('git', ['-C', this.dir, 'archive', '--format=tar', commit], {
      env: GIT_ENV,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    // The bytes are kept only when git exits 0 after the reader has taken all of them.
    const parts: Buffer[] = [];
    let size = 0;
    let keep = isCommitId(commit);
    let ended = false;
    let exitCode: number | null = null;
    const store = () => {
      if (keep && ended && exitCode === 0) commitReads.set(key, Buffer.concat(parts));
    };
    const recorder = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (keep && size > commitReads.largest) {
          keep = false;
          parts.length = 0;
        }
        if (keep) parts.push(chunk);
        done(null, chunk);
      },
      flush(done) {
        ended = true;
        store();
        done();
      },
    });
    child.on('error', (err) => recorder.destroy(err));
    child.on('close', (code) => {
      exitCode = code;
      store();
    });
    pipeline(child.stdio[1]!, recorder, (err) => {
      if (err) keep = false;
    });
    return recorder;
  }
}

/** Where the spec is: `NAME.spec` or the only `*.spec` at the root, else the same in SPECS/. */
export function findSpec(files: readonly string[], sourceName: string): string | null {
  for (const dir of ['', 'SPECS/']) {
    const specs = files.filter((f) => f.startsWith(dir) && f.endsWith('.spec') && !f.slice(dir.length).includes('/'));
    const named = specs.find((f) => f === `${dir}${sourceName}.spec`);
    if (named) return named;
    if (specs.length === 1) return specs[0]!;
    if (specs.length > 1) return null;
  }
  return null;
}
