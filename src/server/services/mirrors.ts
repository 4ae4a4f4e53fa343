import { LenixError } from '../../core/errors.js';
import { parseSha256 } from '../../core/ids.js';
import { type MetalinkUrl, renderMetalink, type RepomdFacts, repomdFacts } from '../../release/metalink.js';
import type { Publisher } from '../../release/publisher.js';
import type { MirrorRecord } from '../../store/mirror-store.js';
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
    private readonly deps: DepsOf<'releases' | 'blobs' | 'clock' | 'config', 'mirrors'>,
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
    const current = await this.facts(repo, repo.currentSnapshotId, arch);
    if (!current) throw new LenixError('NOT_FOUND', `no repomd.xml for ${repo.name}/${arch}`);
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
      if (f && f.hashes.sha256 !== current.hashes.sha256) alternates.push(f);
    }
    const mirrors = await this.list();
    const path = `${repo.name}/${arch}/repodata/repomd.xml`;
    const urls: MetalinkUrl[] =
      mirrors.length > 0
        ? mirrors.map((m, i) => ({ url: `${m.url}${path}`, preference: Math.max(1, 100 - i), location: m.country }))
        : [{ url: `${origin}/repos/${path}`, preference: 100, location: null }];
    return renderMetalink({ current, alternates, urls, pubdate: new Date(this.deps.clock.now()) });
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

/** A mirror's base URL as stored: http(s), ending in one slash. */
export function mirrorBase(url: string): string {
  return `${url.replace(/\/+$/, '')}/`;
}
