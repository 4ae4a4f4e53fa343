import { execFile, spawn } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { LenixError } from '../core/errors.js';
import { hasControlCharacter } from '../core/ids.js';

const run = promisify(execFile);

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
    const { stdout } = await run('git', args, {
      cwd: opts.cwd,
      env: GIT_ENV,
      maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
      encoding: 'utf8',
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

  async fetch(): Promise<void> {
    await git(['remote', 'update', '--prune'], { cwd: this.dir });
  }

  /** Resolve a branch, tag or commit id to the commit and its tree. */
  async resolve(ref: string): Promise<CommitInfo> {
    if (ref.startsWith('-') || ref.length > 256 || /\s/.test(ref) || hasControlCharacter(ref)) {
      throw new LenixError('REF_NOT_FOUND', `not a usable git ref: ${ref.slice(0, 80)}`);
    }
    let out: string;
    try {
      out = await git(['show', '-s', '--format=%H%n%T%n%ct%n%s', `${ref}^{commit}`, '--'], { cwd: this.dir });
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

  async listFiles(commit: string): Promise<string[]> {
    const out = await git(['ls-tree', '-r', '--name-only', '-z', commit], { cwd: this.dir });
    return out.split('\u0000').filter(Boolean);
  }

  /** Paths of the symbolic links in the commit's tree (mode 120000). */
  async listSymlinks(commit: string): Promise<string[]> {
    const out = await git(['ls-tree', '-r', '-z', commit], { cwd: this.dir });
    return out
      .split('\u0000')
      .filter((l) => l.startsWith('120000 '))
      .map((l) => l.slice(l.indexOf('\t') + 1));
  }

  async readFile(commit: string, file: string, maxBytes = 4 * 1024 * 1024): Promise<string> {
    const out = await git(['show', `${commit}:${file}`], { cwd: this.dir, maxBuffer: maxBytes });
    return out;
  }

  /** A tar of the tree at `commit` (git archive), streamed. */
  archive(commit: string): Readable {
    const child = spawn('git', ['archive', '--format=tar', commit], {
      cwd: this.dir,
      env: GIT_ENV,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return child.stdout;
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
