import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A registered mirror: the base URL under which repositories appear as NAME/ARCH/, as rsync copies them there. */
export interface MirrorRecord {
  readonly url: string;
  readonly rsyncUrl: string | null;
  readonly country: string | null;
  readonly contact: string | null;
  readonly createdAt: number;
}

/** What the checker found at a mirror for one repository arch (its last check). */
export interface MirrorCheck {
  readonly mirrorUrl: string;
  readonly repoId: number;
  readonly arch: string;
  /** current; behind (an earlier snapshot); bad (a repomd.xml no snapshot had: edited?); unreachable. */
  readonly state: 'current' | 'behind' | 'bad' | 'unreachable';
  readonly snapshotId: number | null;
  /** Snapshots that went live after the one the mirror serves (behind). */
  readonly behind: number | null;
  readonly sha256: string | null;
  readonly detail: string | null;
  readonly checkedAt: number;
}

/** The mirror registry, the checker's findings and repositories' emergency expiries (metalink alternates dropped). */
export class MirrorStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Add a mirror; false when one with that URL exists (nothing changed). */
  async add(m: MirrorRecord): Promise<boolean> {
    const r = await this.db
      .insertInto('mirrors')
      .values({ url: m.url, rsync_url: m.rsyncUrl, country: m.country, contact: m.contact, created_at: m.createdAt })
      .onConflict((oc) => oc.column('url').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async remove(url: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('mirror_checks').where('mirror_url', '=', url).execute();
      const r = await tx.deleteFrom('mirrors').where('url', '=', url).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /** Record a check's findings (each replaces the mirror's last one for that repository arch). */
  async recordChecks(checks: readonly MirrorCheck[]): Promise<void> {
    if (checks.length === 0) return;
    await this.db
      .insertInto('mirror_checks')
      .values(
        checks.map((c) => ({
          mirror_url: c.mirrorUrl,
          repo_id: c.repoId,
          arch: c.arch,
          state: c.state,
          snapshot_id: c.snapshotId,
          behind: c.behind,
          sha256: c.sha256,
          detail: c.detail,
          checked_at: c.checkedAt,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['mirror_url', 'repo_id', 'arch']).doUpdateSet((eb) => ({
          state: eb.ref('excluded.state'),
          snapshot_id: eb.ref('excluded.snapshot_id'),
          behind: eb.ref('excluded.behind'),
          sha256: eb.ref('excluded.sha256'),
          detail: eb.ref('excluded.detail'),
          checked_at: eb.ref('excluded.checked_at'),
        })),
      )
      .execute();
  }

  /** The last checks of every mirror, or of the repository's. */
  async checks(repoId?: number): Promise<MirrorCheck[]> {
    let q = this.db.selectFrom('mirror_checks').selectAll();
    if (repoId !== undefined) q = q.where('repo_id', '=', repoId);
    const rows = await q.orderBy('mirror_url').orderBy('repo_id').orderBy('arch').execute();
    return rows.map((r) => ({
      mirrorUrl: r.mirror_url,
      repoId: r.repo_id,
      arch: r.arch,
      state: r.state as MirrorCheck['state'],
      snapshotId: r.snapshot_id,
      behind: r.behind,
      sha256: r.sha256,
      detail: r.detail,
      checkedAt: Number(r.checked_at),
    }));
  }

  /** Every mirror, oldest first (the order of preference in metalinks). */
  async list(): Promise<MirrorRecord[]> {
    const rows = await this.db.selectFrom('mirrors').selectAll().orderBy('created_at').orderBy('url').execute();
    return rows.map((r) => ({
      url: r.url,
      rsyncUrl: r.rsync_url,
      country: r.country,
      contact: r.contact,
      createdAt: Number(r.created_at),
    }));
  }

  /** No snapshot of the repository up to `snapshotId` is an alternate from now on. */
  async expire(repoId: number, snapshotId: number, now: number): Promise<void> {
    await this.db
      .insertInto('repo_expiries')
      .values({ repo_id: repoId, through_snapshot_id: snapshotId, expired_at: now })
      .onConflict((oc) => oc.column('repo_id').doUpdateSet({ through_snapshot_id: snapshotId, expired_at: now }))
      .execute();
  }

  /** The last snapshot an expiry covered (0: never expired). */
  async expiredThrough(repoId: number): Promise<number> {
    const r = await this.db
      .selectFrom('repo_expiries')
      .select('through_snapshot_id')
      .where('repo_id', '=', repoId)
      .executeTakeFirst();
    return r?.through_snapshot_id ?? 0;
  }
}
