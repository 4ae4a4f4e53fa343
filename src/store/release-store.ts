import type { Fence } from './leader-store.js';
import type { Kysely, Selectable } from 'kysely';
import { LenixError } from '../core/errors.js';
import type {
  KeyRecord,
  ReleaseRecord,
  ReleaseState,
  RepoKey,
  RepoRecord,
  SnapshotPackage,
  SnapshotRecord,
  SnapshotState,
} from './records.js';
import { byArchAndName } from '../core/ids.js';
import type { Database } from './schema.js';
import { parse, toRelease, toRepo, toSnapshot } from './release-rows.js';

const json = (v: unknown) => JSON.stringify(v);

/**
 * A snapshot's package list stored as changes against another snapshot's (`base`): the entries it adds and the
 * identities (packageIdentity) of those it drops. `depth`: how many such steps lead to a whole list.
 */
interface PackageChanges {
  readonly base: number;
  readonly depth: number;
  readonly add: readonly SnapshotPackage[];
  readonly drop: readonly string[];
}

/** At most this many snapshots of changes between a snapshot and a whole list (reading one walks them). */
const MAX_CHANGE_DEPTH = 16;

/** What tells two entries of a snapshot apart: where it is served and which bytes, from which record. */
const packageIdentity = (p: SnapshotPackage) =>
  `${p.arch}/${p.name}/${p.sha256}/${p.artifactId}/${p.buildId}/${p.importId ?? ''}`;

/** Keys, settings, repositories, releases and snapshots (issue 3), over the same Kysely handle as Store. */
export class ReleaseStore {
  /**
   * Snapshots' package lists, parsed, by snapshot id (the most recently used few). A list never changes once
   * its snapshot is made, so this holds for every process on the database; a 50,000-package list is parsed
   * once, not on every publish and every request that serves a package.
   */
  private readonly packagesById = new Map<number, readonly SnapshotPackage[]>();
  /** How many snapshots of changes lie between a snapshot and the nearest whole list (known ones). */
  private readonly depthById = new Map<number, number>();

  constructor(readonly db: Kysely<Database>) {}

  private remember(id: number, packages: readonly SnapshotPackage[]): readonly SnapshotPackage[] {
    this.packagesById.delete(id);
    this.packagesById.set(id, packages);
    if (this.packagesById.size > 16) this.packagesById.delete(this.packagesById.keys().next().value!);
    return packages;
  }

  private async snapshotOf(
    r: Omit<Selectable<Database['snapshots']>, 'packages'> & { packages?: string },
  ): Promise<SnapshotRecord> {
    return toSnapshot(r, await this.packagesOf(r.id, r.packages));
  }

  /**
   * A snapshot's package list: cached, or parsed from its stored text (read when not given). A list stored as
   * changes (PackageChanges) is its base's list with them applied, the base resolved the same way.
   */
  private async packagesOf(
    id: number,
    stored?: string,
    rows?: ReadonlyMap<number, string>,
  ): Promise<readonly SnapshotPackage[]> {
    const cached = this.packagesById.get(id);
    if (cached) return this.remember(id, cached);
    const text =
      stored ??
      rows?.get(id) ??
      (await this.db.selectFrom('snapshots').select('packages').where('id', '=', id).executeTakeFirst())?.packages;
    const value: unknown = parse(text ?? '[]', []);
    if (Array.isArray(value)) return this.remember(id, value as SnapshotPackage[]);
    const changes = value as PackageChanges;
    const dropped = new Set(changes.drop);
    const base = (await this.packagesOf(changes.base, undefined, rows)).filter((p) => !dropped.has(packageIdentity(p)));
    this.depthById.set(id, changes.depth);
    return this.remember(id, [...base, ...changes.add].sort(byArchAndName));
  }

  /**
   * How a snapshot's package list is stored: as changes against the snapshot it was planned from when those are
   * few and its chain of changes is short (a release into a 50,000-package repository writes a few entries, not
   * 12 MB), else whole.
   */
  private async packagesText(
    packages: readonly SnapshotPackage[],
    baseId: number | null,
  ): Promise<{ text: string; depth: number }> {
    const whole = () => ({ text: json(packages), depth: 0 });
    if (baseId === null || packages.length < 64) return whole();
    const base = await this.packagesOf(baseId);
    const depth = (this.depthById.get(baseId) ?? 0) + 1;
    if (depth > MAX_CHANGE_DEPTH) return whole();
    // A plan keeps the base's own records for what it leaves alone: telling records apart is enough (an equal
    // record that is another object is dropped and added again, which reads back the same).
    const was = new Set(base);
    const next = new Set(packages);
    const add = packages.filter((p) => !was.has(p));
    const drop = base.filter((p) => !next.has(p)).map(packageIdentity);
    if ((add.length + drop.length) * 4 > packages.length) return whole();
    return { text: json({ base: baseId, depth, add, drop } satisfies PackageChanges), depth };
  }

  /** Snapshot columns without the package list (read only when it is not cached). */
  private readonly heads = [
    'id',
    'repo_id',
    'release_id',
    'state',
    'repomd',
    'key_fingerprint',
    'created_at',
    'published_at',
    'advisories',
    'files',
  ] as const;

  // ── keys and settings ─────────────────────────────────────────────────────────────────────────────

  async upsertKey(k: Omit<KeyRecord, 'createdAt'>, now: number): Promise<KeyRecord> {
    const existing = await this.getKey(k.fingerprint);
    if (existing) return existing;
    await this.db
      .insertInto('keys')
      .values({
        fingerprint: k.fingerprint,
        name: k.name,
        algorithm: k.algorithm,
        public_key: k.publicKey,
        created_at: now,
      })
      .execute();
    return (await this.getKey(k.fingerprint))!;
  }

  async getKey(fingerprint: string): Promise<KeyRecord | null> {
    const r = await this.db.selectFrom('keys').selectAll().where('fingerprint', '=', fingerprint).executeTakeFirst();
    return r
      ? {
          fingerprint: r.fingerprint,
          name: r.name,
          algorithm: r.algorithm,
          publicKey: r.public_key,
          createdAt: Number(r.created_at),
        }
      : null;
  }

  async listKeys(): Promise<KeyRecord[]> {
    const rows = await this.db.selectFrom('keys').selectAll().orderBy('created_at').execute();
    return rows.map((r) => ({
      fingerprint: r.fingerprint,
      name: r.name,
      algorithm: r.algorithm,
      publicKey: r.public_key,
      createdAt: Number(r.created_at),
    }));
  }

  async getSetting(key: string): Promise<string | null> {
    return (
      (await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value ?? null
    );
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('settings').where('key', '=', key).execute();
      await trx.insertInto('settings').values({ key, value }).execute();
    });
  }

  // ── repositories ──────────────────────────────────────────────────────────────────────────────────

  async createRepo(
    r: {
      name: string;
      arches: readonly string[];
      keys: readonly string[];
      keepDays: number;
      keepVersions?: number;
      vendor?: string | null;
      distro?: string | null;
      errataPrefix?: string | null;
      osvEcosystem?: string | null;
      followTargetId?: number | null;
      autoRelease?: boolean;
    },
    now: number,
  ): Promise<RepoRecord> {
    if (await this.getRepoByName(r.name)) throw new LenixError('REPO_EXISTS', `repository ${r.name} already exists`);
    const keys: RepoKey[] = r.keys.map((fingerprint) => ({ fingerprint, addedAt: now, retiredAt: null }));
    const row = await this.db
      .insertInto('repos')
      .values({
        name: r.name,
        arches: json(r.arches),
        keys: json(keys),
        current_snapshot_id: null,
        keep_days: r.keepDays,
        keep_versions: r.keepVersions ?? 0,
        created_at: now,
        vendor: r.vendor ?? null,
        distro: r.distro ?? null,
        errata_prefix: r.errataPrefix ?? null,
        osv_ecosystem: r.osvEcosystem ?? null,
        follow_target_id: r.followTargetId ?? null,
        auto_release: r.autoRelease ? 1 : 0,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toRepo(row);
  }

  /** Repositories that release every passing build of a target at once. */
  async autoReleaseRepos(targetId: number): Promise<RepoRecord[]> {
    const rows = await this.db
      .selectFrom('repos')
      .selectAll()
      .where('follow_target_id', '=', targetId)
      .where('auto_release', '=', 1)
      .orderBy('id')
      .execute();
    return rows.map(toRepo);
  }

  async getRepoByName(name: string): Promise<RepoRecord | null> {
    const r = await this.db.selectFrom('repos').selectAll().where('name', '=', name).executeTakeFirst();
    return r ? toRepo(r) : null;
  }

  async getRepo(id: number): Promise<RepoRecord | null> {
    const r = await this.db.selectFrom('repos').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toRepo(r) : null;
  }

  async listRepos(): Promise<RepoRecord[]> {
    return (await this.db.selectFrom('repos').selectAll().orderBy('name').execute()).map(toRepo);
  }

  async setRepoKeys(id: number, keys: readonly RepoKey[]): Promise<void> {
    await this.db
      .updateTable('repos')
      .set({ keys: json(keys) })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Make a snapshot the one served. With a fence, only while the fence's holder still holds its role at that
   * fencing number (one statement: a publisher that lost the role to another server switches nothing).
   */
  async setCurrentSnapshot(repoId: number, snapshotId: number, fence?: Fence): Promise<void> {
    let q = this.db.updateTable('repos').set({ current_snapshot_id: snapshotId }).where('id', '=', repoId);
    if (fence)
      q = q.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('leaders')
            .select('role')
            .where('role', '=', fence.role)
            .where('holder', '=', fence.holder)
            .where('fencing', '=', fence.fencing),
        ),
      );
    const r = await q.executeTakeFirst();
    if (fence && Number(r.numUpdatedRows) === 0)
      throw new LenixError(
        'NOT_LEADER',
        `this server no longer holds the ${fence.role} role (fencing ${fence.fencing})`,
      );
  }

  // ── releases ──────────────────────────────────────────────────────────────────────────────────────

  async createRelease(
    r: {
      repoId: number;
      builds: readonly number[];
      plan: Record<string, unknown>;
      overrideReason: string | null;
      createdBy: string;
      state: ReleaseState;
      approvedBy: string | null;
    },
    now: number,
  ): Promise<ReleaseRecord> {
    const row = await this.db
      .insertInto('releases')
      .values({
        repo_id: r.repoId,
        state: r.state,
        builds: json(r.builds),
        plan: json(r.plan),
        override_reason: r.overrideReason,
        created_by: r.createdBy,
        created_at: now,
        approved_by: r.approvedBy,
        approved_at: r.approvedBy ? now : null,
        snapshot_id: null,
        finished_at: null,
        reason_code: null,
        reason: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toRelease(row);
  }

  async getRelease(id: number): Promise<ReleaseRecord | null> {
    const r = await this.db.selectFrom('releases').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toRelease(r) : null;
  }

  async listReleases(repoId?: number, limit = 100): Promise<ReleaseRecord[]> {
    let q = this.db.selectFrom('releases').selectAll();
    if (repoId !== undefined) q = q.where('repo_id', '=', repoId);
    return (await q.orderBy('id', 'desc').limit(limit).execute()).map(toRelease);
  }

  /** Releases that include a build. */
  async releasesOfBuild(buildId: number): Promise<ReleaseRecord[]> {
    const rows = await this.db
      .selectFrom('releases')
      .selectAll()
      .where('builds', 'like', `%${buildId}%`)
      .orderBy('id')
      .execute();
    return rows.map(toRelease).filter((r) => r.builds.includes(buildId));
  }

  async listReleasesByState(state: ReleaseState): Promise<ReleaseRecord[]> {
    return (await this.db.selectFrom('releases').selectAll().where('state', '=', state).orderBy('id').execute()).map(
      toRelease,
    );
  }

  /** Move a release from one state to another; false when it was not in `from` (someone else moved it). */
  async moveRelease(
    id: number,
    from: ReleaseState,
    to: ReleaseState,
    set: { approvedBy?: string; snapshotId?: number; reasonCode?: string; reason?: string },
    now: number,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('releases')
      .set({
        state: to,
        ...(set.approvedBy ? { approved_by: set.approvedBy, approved_at: now } : {}),
        ...(set.snapshotId !== undefined ? { snapshot_id: set.snapshotId } : {}),
        ...(set.reasonCode ? { reason_code: set.reasonCode, reason: set.reason ?? null } : {}),
        ...(to === 'published' || to === 'failed' || to === 'rejected' ? { finished_at: now } : {}),
      })
      .where('id', '=', id)
      .where('state', '=', from)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  // ── snapshots ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * A new snapshot (building). `baseId`: the snapshot its package list was planned from (the repository's
   * current one), against which the list may be stored as changes.
   */
  async createSnapshot(
    s: {
      repoId: number;
      releaseId: number | null;
      packages: readonly SnapshotPackage[];
      keyFingerprint: string;
      baseId?: number | null;
    },
    now: number,
  ): Promise<SnapshotRecord> {
    const packages = [...s.packages].sort(byArchAndName);
    const stored = await this.packagesText(packages, s.baseId ?? null);
    const row = await this.db
      .insertInto('snapshots')
      .values({
        repo_id: s.repoId,
        release_id: s.releaseId,
        state: 'building',
        packages: stored.text,
        repomd: null,
        key_fingerprint: s.keyFingerprint,
        created_at: now,
        published_at: null,
        advisories: null,
        files: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    this.remember(row.id, packages);
    this.depthById.set(row.id, stored.depth);
    return {
      id: row.id,
      repoId: s.repoId,
      releaseId: s.releaseId,
      state: 'building',
      packages,
      repomd: null,
      keyFingerprint: s.keyFingerprint,
      createdAt: now,
      publishedAt: null,
      advisories: [],
      files: null,
    };
  }

  async getSnapshot(id: number): Promise<SnapshotRecord | null> {
    const r = this.packagesById.has(id)
      ? await this.db.selectFrom('snapshots').select(this.heads).where('id', '=', id).executeTakeFirst()
      : await this.db.selectFrom('snapshots').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? this.snapshotOf(r) : null;
  }

  /** A repository's snapshots, newest first; `packages: false` leaves their package lists out (empty). */
  async listSnapshots(repoId: number, o: { packages?: boolean } = {}): Promise<SnapshotRecord[]> {
    if (o.packages === false) {
      const rows = await this.db
        .selectFrom('snapshots')
        .select(this.heads)
        .where('repo_id', '=', repoId)
        .orderBy('id', 'desc')
        .execute();
      return rows.map((r) => toSnapshot(r, []));
    }
    const rows = await this.db
      .selectFrom('snapshots')
      .selectAll()
      .where('repo_id', '=', repoId)
      .orderBy('id', 'desc')
      .execute();
    const stored = new Map(rows.map((r) => [r.id, r.packages]));
    const out: SnapshotRecord[] = [];
    for (const r of rows) out.push(toSnapshot(r, await this.packagesOf(r.id, r.packages, stored)));
    return out;
  }

  async setSnapshotState(
    id: number,
    state: SnapshotState,
    set: {
      repomd?: Record<string, string>;
      publishedAt?: number;
      advisories?: readonly string[];
      files?: Record<string, string>;
    } = {},
  ): Promise<void> {
    await this.db
      .updateTable('snapshots')
      .set({
        state,
        ...(set.repomd ? { repomd: json(set.repomd) } : {}),
        ...(set.publishedAt ? { published_at: set.publishedAt } : {}),
        ...(set.advisories ? { advisories: json(set.advisories) } : {}),
        ...(set.files ? { files: json(set.files) } : {}),
      })
      .where('id', '=', id)
      .execute();
  }
}
