import type { Selectable } from 'kysely';
import type {
  ReleaseRecord,
  ReleaseState,
  RepoRecord,
  SnapshotPackage,
  SnapshotRecord,
  SnapshotState,
} from './records.js';
import type { Database } from './schema.js';

/** Release-side rows (repositories, releases, snapshots) as records. */
export const parse = <T>(t: string | null, fallback: T): T => (t === null ? fallback : (JSON.parse(t) as T));
export const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function toRepo(r: Selectable<Database['repos']>): RepoRecord {
  return {
    id: r.id,
    name: r.name,
    arches: parse(r.arches, []),
    keys: parse(r.keys, []),
    currentSnapshotId: r.current_snapshot_id,
    keepDays: r.keep_days,
    keepVersions: Number(r.keep_versions),
    createdAt: Number(r.created_at),
    vendor: r.vendor,
    distro: r.distro,
    errataPrefix: r.errata_prefix,
    osvEcosystem: r.osv_ecosystem,
    followTargetId: r.follow_target_id,
    autoRelease: r.auto_release === 1,
  };
}

export function toRelease(r: Selectable<Database['releases']>): ReleaseRecord {
  return {
    id: r.id,
    repoId: r.repo_id,
    state: r.state as ReleaseState,
    builds: parse(r.builds, []),
    plan: parse(r.plan, {}),
    overrideReason: r.override_reason,
    createdBy: r.created_by,
    createdAt: Number(r.created_at),
    approvedBy: r.approved_by,
    approvedAt: num(r.approved_at),
    snapshotId: r.snapshot_id,
    finishedAt: num(r.finished_at),
    reasonCode: r.reason_code,
    reason: r.reason,
  };
}

export function toSnapshot(
  r: Omit<Selectable<Database['snapshots']>, 'packages'>,
  packages: readonly SnapshotPackage[],
): SnapshotRecord {
  return {
    id: r.id,
    repoId: r.repo_id,
    releaseId: r.release_id,
    state: r.state as SnapshotState,
    packages,
    repomd: parse(r.repomd, null),
    keyFingerprint: r.key_fingerprint,
    createdAt: Number(r.created_at),
    publishedAt: num(r.published_at),
    advisories: parse(r.advisories, []),
    files: parse(r.files, null),
  };
}
