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

/** The mirror registry and repositories' emergency expiries (metalink alternates dropped). */
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
    const r = await this.db.deleteFrom('mirrors').where('url', '=', url).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
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
