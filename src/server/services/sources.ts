import { randomBytes } from 'node:crypto';
import { realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { LenixError } from '../../core/errors.js';
import { isLocalSourceUrl } from '../../core/source-url.js';
import { hasControlCharacter, parseSourceName } from '../../core/ids.js';
import { findSpec, GitMirror } from '../../intake/git.js';
import type { CommitRecord, SourceRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';

export interface AddSource {
  readonly name: string;
  readonly url: string;
  readonly branch?: string | undefined;
  readonly watch: boolean;
  /** The build target pushed and watched commits are built for. */
  readonly target?: string | undefined;
}

/** Refuse URLs that git would read as options or that name a transport we do not allow. */
export function parseSourceUrl(url: string): string {
  if (url.length === 0 || url.length > 2048 || url.startsWith('-') || hasControlCharacter(url)) {
    throw new LenixError('BAD_REQUEST', 'source URL must be a git URL or an absolute path');
  }
  if (!/^(https?|git|ssh|file):\/\//.test(url) && !path.isAbsolute(url) && !/^[\w.-]+@[\w.-]+:/.test(url)) {
    throw new LenixError(
      'BAD_REQUEST',
      'source URL must be http(s)://, git://, ssh://, file://, user@host:path or an absolute path',
    );
  }
  return url;
}

/** The Git Service: bare mirrors of source repositories and the commits builds are made from. */
export class SourceService {
  /** Clones in progress, per source: concurrent callers wait for the one clone. */
  private readonly cloning = new Map<string, Promise<GitMirror>>();
  constructor(private readonly deps: DepsOf<'clock' | 'config' | 'log', 'sources' | 'targets'>) {}

  mirrorOf(source: Pick<SourceRecord, 'name'>): GitMirror {
    return new GitMirror(path.join(this.deps.config.dataDir, 'git', `${source.name}.git`));
  }

  /**
   * This server's mirror of a source, cloned now if it has none (the source was added on another server of the
   * same database), and fetched when it lacks `commit`.
   */
  async mirror(source: Pick<SourceRecord, 'name' | 'url'>, commit?: string): Promise<GitMirror> {
    let mirror = this.mirrorOf(source);
    if (!(await mirror.exists())) {
      let clone = this.cloning.get(source.name);
      if (!clone) {
        // Added on another server: this server's own allowed roots apply to a local path as well.
        if (isLocalSourceUrl(source.url)) await this.requireUnderRoots(source.url);
        const tmp = path.join(this.deps.config.dataDir, 'git', `.new-${randomBytes(6).toString('hex')}.git`);
        clone = (async () => {
          try {
            await GitMirror.create(source.url, tmp);
            await rename(tmp, mirror.dir);
            this.deps.log.info({ component: 'intake', source: source.name }, 'source mirrored on this server');
            return mirror;
          } finally {
            await rm(tmp, { recursive: true, force: true });
            this.cloning.delete(source.name);
          }
        })();
        this.cloning.set(source.name, clone);
      }
      mirror = await clone;
    }
    if (
      commit !== undefined &&
      !(await mirror.resolve(commit).then(
        () => true,
        () => false,
      ))
    )
      await mirror.fetch();
    return mirror;
  }

  /** Where the source's spec is on its branch now (fetched first), or null when it has none or several. */
  async specPathOf(source: SourceRecord): Promise<string | null> {
    const mirror = await this.mirror(source);
    await mirror.fetch();
    const head = await mirror.resolve(`refs/heads/${source.branch}`);
    return findSpec(await mirror.listFiles(head.sha), source.name);
  }

  async require(name: string): Promise<SourceRecord> {
    const s = await this.deps.store.sources.getByName(name);
    if (!s) throw new LenixError('SOURCE_NOT_FOUND', `no source named ${name.slice(0, 100)}`);
    return s;
  }

  /** A repository on the server's disk only under a configured root (its history becomes public otherwise). */
  private async requireUnderRoots(url: string): Promise<void> {
    const local = url.startsWith('file://') ? new URL(url).pathname : url;
    const real = await realpath(local).catch(() => path.resolve(local));
    for (const root of this.deps.config.localSourceRoots) {
      const r = await realpath(root).catch(() => path.resolve(root));
      if (real === r || real.startsWith(r.endsWith(path.sep) ? r : `${r}${path.sep}`)) return;
    }
    throw new LenixError(
      'SOURCE_NOT_ALLOWED',
      'local sources must lie under a folder the server allows (lenix server --local-source-root DIR)',
    );
  }

  /** Mirror first, then record: a source whose clone fails leaves no row and no folder behind. */
  async add(input: AddSource): Promise<{ source: SourceRecord; head: CommitRecord }> {
    const name = parseSourceName(input.name);
    const url = parseSourceUrl(input.url);
    if (isLocalSourceUrl(url)) await this.requireUnderRoots(url);
    if (await this.deps.store.sources.getByName(name))
      throw new LenixError('SOURCE_EXISTS', `source ${name} already exists`);
    const target = input.target === undefined ? null : await this.deps.store.targets.getByName(input.target);
    if (input.target !== undefined && !target)
      throw new LenixError('TARGET_NOT_FOUND', `no target ${input.target.slice(0, 64)}`);
    const tmp = path.join(this.deps.config.dataDir, 'git', `.new-${randomBytes(6).toString('hex')}.git`);
    try {
      const mirror = await GitMirror.create(url, tmp);
      const branch = input.branch ?? (await mirror.defaultBranch());
      const head = await mirror.resolve(`refs/heads/${branch}`).catch((err: unknown) => {
        throw new LenixError('REF_NOT_FOUND', `branch ${branch} does not exist in ${url}`, { cause: err });
      });
      const now = this.deps.clock.now();
      // The tip is "seen" from the moment the source exists: the watcher builds only commits after it (the caller
      // builds the tip itself), so a watcher pass that runs meanwhile cannot build it a second time.
      const source = await this.deps.store.sources.add(
        { name, url, branch, watch: input.watch, targetId: target?.id ?? null, lastSeenCommit: head.sha },
        now,
      );
      try {
        await rename(tmp, this.mirrorOf(source).dir);
      } catch (err) {
        await this.deps.store.sources.deleteIfUnused(source.id);
        throw err;
      }
      const commit = await this.deps.store.sources.recordCommit(source.id, head, now);
      this.deps.log.info({ component: 'intake', source: name, commit: head.sha }, 'source mirrored');
      return { source: (await this.deps.store.sources.get(source.id))!, head: commit };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Fetch the mirror and record the branch tip. */
  async refresh(source: SourceRecord): Promise<CommitRecord> {
    const mirror = await this.mirror(source);
    await mirror.fetch();
    const head = await mirror.resolve(`refs/heads/${source.branch}`);
    return this.deps.store.sources.recordCommit(source.id, head, this.deps.clock.now());
  }
}
