import { mirrorBase } from '../../core/mirror-url.js';
import { LenixError } from '../../core/errors.js';
import { parseSha256 } from '../../core/ids.js';
import { type MetalinkUrl, renderMetalink, type RepomdFacts, repomdFacts } from '../../release/metalink.js';
import type { Publisher } from '../../release/publisher.js';
import { judgeRepomd } from '../../release/mirror-judge.js';
import type { MirrorCheck, MirrorRecord } from '../../store/mirror-store.js';
import { createHash } from 'node:crypto';
import type { RepoRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import { readFile } from 'node:fs/promises';
import type { ReleaseService } from './releases.js';

/** How many earlier snapshots a metalink still accepts (newest first), until an emergency expire drops them. */
export const MAX_ALTERNATES = 4;

/**
 * The mirror network: the registry of mirrors, the metalink per repository arch (the freshness anchor dnf checks
 * every mirror against) and the emergency expire that drops a repository's alternates after an urgent release.
 */
export class MirrorService {
  constructor(
    private readonly deps: DepsOf<'releases' | 'blobs' | 'clock' | 'config' | 'log', 'mirrors'>,
    private readonly releases: ReleaseService,
    private readonly publisher: Publisher,
  ) {}

  async add(m: Omit<MirrorRecord, 'createdAt' | 'url'> & { url: string }): Promise<MirrorRecord> {
    const record = { ...m, url: mirrorBase(m.url), createdAt: this.deps.clock.now() };
    if (!(await this.deps.store.mirrors.add(record)))
      throw new LenixError('MIRROR_EXISTS', `a mirror ${record.url} is registered already`);
    return record;
  }

  async remove(url: string): Promise<void> {
    if (!(await this.deps.store.mirrors.remove(mirrorBase(url))))
      throw new LenixError('MIRROR_NOT_FOUND', `no mirror ${mirrorBase(url).slice(0, 200)}`);
  }

  list(): Promise<MirrorRecord[]> {
    return this.deps.store.mirrors.list();
  }

  /** Every mirror with its last check per repository arch. */
  async status(): Promise<(MirrorRecord & { checks: (MirrorCheck & { repo: string })[] })[]> {
    const names = new Map((await this.deps.releases.listRepos()).map((r) => [r.id, r.name]));
    const checks = await this.deps.store.mirrors.checks();
    return (await this.list()).map((m) => ({
      ...m,
      checks: checks
        .filter((c) => c.mirrorUrl === m.url && names.has(c.repoId))
        .map((c) => ({ ...c, repo: names.get(c.repoId)! })),
    }));
  }

  /**
   * The checker: fetch each mirror's repomd.xml of every published repository arch and judge it against the
   * snapshots Lenix published (current, behind by N, bad: bytes no snapshot had, unreachable). Only mirrors whose
   * last check found them current enter the metalinks. A bad mirror is logged as an error: it may be tampered.
   */
  async check(only?: string): Promise<(MirrorCheck & { repo: string })[]> {
    const mirrors = (await this.list()).filter((m) => only === undefined || m.url === mirrorBase(only));
    if (only !== undefined && mirrors.length === 0)
      throw new LenixError('MIRROR_NOT_FOUND', `no mirror ${mirrorBase(only).slice(0, 200)}`);
    const repos = (await this.deps.releases.listRepos()).filter((r) => r.currentSnapshotId !== null);
    const found: (MirrorCheck & { repo: string })[] = [];
    for (const repo of repos) {
      const snapshots = await this.deps.releases.listSnapshots(repo.id, { packages: false });
      for (const m of mirrors) {
        const results = await Promise.all(
          repo.arches.map(async (arch) => {
            const url = `${m.url}${repo.name}/${arch}/repodata/repomd.xml`;
            const got = await fetchSmall(url);
            const base = { mirrorUrl: m.url, repoId: repo.id, arch, repo: repo.name, checkedAt: this.deps.clock.now() };
            if ('error' in got)
              return {
                ...base,
                state: 'unreachable' as const,
                snapshotId: null,
                behind: null,
                sha256: null,
                detail: got.error,
              };
            const sha256 = createHash('sha256').update(got.body).digest('hex');
            const v = judgeRepomd(sha256, arch, snapshots, repo.currentSnapshotId!);
            const detail =
              v.state === 'bad'
                ? `${url} serves a repomd.xml (sha256 ${sha256}) that no snapshot of ${repo.name} had: edited or tampered`
                : v.state === 'behind'
                  ? `serves snapshot ${v.snapshotId}, ${v.behind} behind ${repo.currentSnapshotId}`
                  : null;
            return { ...base, ...v, sha256, detail };
          }),
        );
        for (const r of results) {
          if (r.state === 'bad')
            this.deps.log.error(
              { component: 'mirrors', mirror: m.url, repo: repo.name, arch: r.arch, sha256: r.sha256 },
              'mirror serves metadata Lenix never published',
            );
          else if (r.state !== 'current')
            this.deps.log.warn(
              { component: 'mirrors', mirror: m.url, repo: repo.name, arch: r.arch, state: r.state, detail: r.detail },
              'mirror not current',
            );
        }
        found.push(...results);
      }
    }
    await this.deps.store.mirrors.recordChecks(found);
    return found;
  }

  /** No snapshot before the current one is an alternate any more (MirrorManager's emergency expire). */
  async expire(repoName: string): Promise<{ repo: string; through: number }> {
    const repo = await this.releases.requireRepo(repoName);
    if (repo.currentSnapshotId === null)
      throw new LenixError('REPO_NOT_FOUND', `repository ${repo.name} has nothing published`);
    await this.deps.store.mirrors.expire(repo.id, repo.currentSnapshotId - 1, this.deps.clock.now());
    return { repo: repo.name, through: repo.currentSnapshotId - 1 };
  }

  /**
   * The metalink of a repository arch. Its URLs are the registered mirrors' (in order of registration); with none
   * registered, the origin itself, so that a fresh Lenix serves its clients directly.
   */
  async metalink(repoName: string, arch: string, origin: string): Promise<string> {
    const repo = await this.releases.requireRepo(repoName);
    if (!repo.arches.includes(arch))
      throw new LenixError('NOT_FOUND', `repository ${repo.name} has no arch ${arch.slice(0, 64)}`);
    if (repo.currentSnapshotId === null)
      throw new LenixError('REPO_NOT_FOUND', `repository ${repo.name} has nothing published`);
    const now = await this.facts(repo, repo.currentSnapshotId, arch);
    if (!now) throw new LenixError('NOT_FOUND', `no repomd.xml for ${repo.name}/${arch}`);
    const through = await this.deps.store.mirrors.expiredThrough(repo.id);
    // Newest first: each earlier snapshot stays an alternate for the grace time after its successor went live.
    const published = (await this.deps.releases.listSnapshots(repo.id, { packages: false }))
      .filter((s) => s.state === 'ready' && s.id <= repo.currentSnapshotId! && s.publishedAt !== null)
      .sort((a, b) => b.id - a.id);
    const since = this.deps.clock.now() - this.deps.config.metalinkGraceMs;
    const alternates: RepomdFacts[] = [];
    for (let i = 1; i < published.length && alternates.length < MAX_ALTERNATES; i++) {
      const s = published[i]!;
      if (s.id <= through || published[i - 1]!.publishedAt! < since) break;
      const f = await this.facts(repo, s.id, arch);
      if (f && f.hashes.sha256 !== now.hashes.sha256) alternates.push(f);
    }
    // Only mirrors whose last check found this repository arch current; the origin when none is.
    const current = new Set(
      (await this.deps.store.mirrors.checks(repo.id))
        .filter((c) => c.arch === arch && c.state === 'current')
        .map((c) => c.mirrorUrl),
    );
    const mirrors = (await this.list()).filter((m) => current.has(m.url));
    const path = `${repo.name}/${arch}/repodata/repomd.xml`;
    const urls: MetalinkUrl[] =
      mirrors.length > 0
        ? mirrors.map((m, i) => ({ url: `${m.url}${path}`, preference: Math.max(1, 100 - i), location: m.country }))
        : [{ url: `${origin}/repos/${path}`, preference: 100, location: null }];
    return renderMetalink({ current: now, alternates, urls, pubdate: new Date(this.deps.clock.now()) });
  }

  private async facts(repo: RepoRecord, snapshotId: number, arch: string): Promise<RepomdFacts | null> {
    const found = await this.publisher.metadataFile(repo.name, snapshotId, [arch, 'repodata', 'repomd.xml']);
    if (!found) return null;
    if ('file' in found) return repomdFacts(await readFile(found.file));
    const blob = await this.deps.blobs.open(parseSha256(found.sha256));
    const chunks: Buffer[] = [];
    for await (const c of blob.stream) chunks.push(c as Buffer);
    return repomdFacts(Buffer.concat(chunks));
  }
}

/** GET a small file (a repomd.xml): its bytes, or why not (status, error, too large, too slow). */
async function fetchSmall(url: string, limit = 4 * 1024 * 1024): Promise<{ body: Buffer } | { error: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(30_000), redirect: 'follow' });
    if (r.status !== 200) {
      await r.body?.cancel();
      return { error: `HTTP ${r.status}` };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of r.body ?? []) {
      size += (c as Uint8Array).length;
      if (size > limit) return { error: `larger than ${limit} bytes` };
      chunks.push(Buffer.from(c as Uint8Array));
    }
    return { body: Buffer.concat(chunks) };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { error: (e.cause?.code ?? e.message).slice(0, 200) };
  }
}
