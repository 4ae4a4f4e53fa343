import { LenixError } from '../../core/errors.js';
import { parseSha256 } from '../../core/ids.js';
import type { Publisher } from '../../release/publisher.js';
import type { DepsOf } from '../context.js';

/** What a prune removed (or, dry, would remove). */
export interface PruneReport {
  readonly dryRun: boolean;
  readonly snapshots: number;
  readonly artifacts: readonly { sha256: string; name: string; kind: string; buildId: number; size: number }[];
  /** Bytes freed in the blob store (digests nothing else needs). */
  readonly bytes: number;
}

/**
 * Retention: old snapshots and the bytes of build artifacts nothing references any more are pruned by policy
 * (older than `keepDays`, beyond each source's newest `keepBuilds` builds). Packages in any snapshot that is not
 * pruned are never touched. Records and ledger statements stay forever: `lenix verify` still proves where a
 * pruned artifact came from, and its download answers ARTIFACT_PRUNED (410).
 */
export class RetentionService {
  constructor(
    private readonly deps: DepsOf<'releases' | 'blobs' | 'clock' | 'log', 'artifacts'>,
    private readonly publisher: Publisher,
  ) {}

  async prune(o: { keepDays: number; keepBuilds: number; dryRun?: boolean }): Promise<PruneReport> {
    if (!(Number.isInteger(o.keepDays) && o.keepDays >= 0 && Number.isInteger(o.keepBuilds) && o.keepBuilds >= 0))
      throw new LenixError('BAD_REQUEST', 'keep-days and keep-builds are whole numbers ≥ 0');
    const now = this.deps.clock.now();
    let snapshots = 0;
    const referenced = new Set<string>();
    for (const repo of await this.deps.releases.listRepos()) {
      if (!o.dryRun) snapshots += await this.publisher.prune(repo, o.keepDays);
      // Every package of a snapshot that is live, kept or still being made keeps its bytes.
      for (const s of await this.deps.releases.listSnapshots(repo.id))
        if (s.state !== 'failed') for (const p of s.packages) referenced.add(p.sha256);
    }
    const candidates = (
      await this.deps.store.artifacts.pruneCandidates(now - o.keepDays * 86_400_000, o.keepBuilds)
    ).filter((a) => !referenced.has(a.sha256));
    if (o.dryRun)
      return report(
        true,
        0,
        candidates,
        candidates.reduce((n, a) => n + a.size, 0),
      );
    await this.deps.store.artifacts.markPruned(
      candidates.map((a) => a.id),
      now,
    );
    // Remove the bytes nothing else needs (another artifact, an import, lookaside, shared metadata).
    const needed = await this.deps.store.artifacts.referencedBlobs();
    let bytes = 0;
    const sizes = new Map(candidates.map((a) => [a.sha256, a.size]));
    for (const [sha, size] of sizes) {
      if (needed.has(sha) || !(await this.deps.blobs.has(parseSha256(sha)))) continue;
      bytes += size;
      await this.deps.blobs.remove(parseSha256(sha));
    }
    this.deps.log.info(
      {
        component: 'retention',
        snapshots,
        artifacts: candidates.length,
        bytes,
        keepDays: o.keepDays,
        keepBuilds: o.keepBuilds,
      },
      'pruned',
    );
    return report(false, snapshots, candidates, bytes);
  }
}

function report(
  dryRun: boolean,
  snapshots: number,
  artifacts: readonly { sha256: string; name: string; kind: string; buildId: number; size: number }[],
  bytes: number,
): PruneReport {
  return {
    dryRun,
    snapshots,
    artifacts: artifacts.map((a) => ({
      sha256: a.sha256,
      name: a.name,
      kind: a.kind,
      buildId: a.buildId,
      size: a.size,
    })),
    bytes,
  };
}
