import type { Kysely } from 'kysely';
import { LenixError } from '../core/errors.js';
import type { CommitRecord, SourceRecord } from './records.js';
import type { Database } from './schema.js';
import { isUniqueViolation, toCommit, toSource } from './rows.js';

/** Sources (git repositories of specs) and the commits Lenix has seen in them. */
export class SourceStore {
  constructor(readonly db: Kysely<Database>) {}

  async add(
    s: {
      name: string;
      url: string;
      branch: string;
      watch: boolean;
      targetId?: number | null;
      /** The branch tip, seen from the start: a watcher pass never builds it (its caller does). */
      lastSeenCommit?: string | null;
    },
    now: number,
  ): Promise<SourceRecord> {
    try {
      const row = await this.db
        .insertInto('sources')
        .values({
          name: s.name,
          url: s.url,
          branch: s.branch,
          watch: s.watch ? 1 : 0,
          created_at: now,
          last_fetched_at: s.lastSeenCommit ? now : null,
          last_seen_commit: s.lastSeenCommit ?? null,
          hook_secret: null,
          target_id: s.targetId ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toSource(row);
    } catch (err) {
      if (isUniqueViolation(err))
        throw new LenixError('SOURCE_EXISTS', `source ${s.name} already exists`, { cause: err });
      throw err;
    }
  }

  async deleteIfUnused(id: number): Promise<void> {
    await this.db.deleteFrom('sources').where('id', '=', id).execute();
  }

  async getByName(name: string): Promise<SourceRecord | null> {
    const row = await this.db.selectFrom('sources').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toSource(row) : null;
  }

  async get(id: number): Promise<SourceRecord | null> {
    const row = await this.db.selectFrom('sources').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toSource(row) : null;
  }

  async list(): Promise<SourceRecord[]> {
    const rows = await this.db.selectFrom('sources').selectAll().orderBy('name').execute();
    return rows.map(toSource);
  }

  /** Set (or with null, clear) the webhook secret a forge signs push events with. */
  async setHookSecret(id: number, secret: string | null): Promise<void> {
    await this.db.updateTable('sources').set({ hook_secret: secret }).where('id', '=', id).execute();
  }

  async hookSecret(id: number): Promise<string | null> {
    const row = await this.db.selectFrom('sources').select('hook_secret').where('id', '=', id).executeTakeFirst();
    return row?.hook_secret ?? null;
  }

  async setTarget(id: number, targetId: number | null): Promise<void> {
    await this.db.updateTable('sources').set({ target_id: targetId }).where('id', '=', id).execute();
  }

  async markFetched(id: number, now: number, lastSeenCommit: string | null): Promise<void> {
    await this.db
      .updateTable('sources')
      .set({ last_fetched_at: now, last_seen_commit: lastSeenCommit })
      .where('id', '=', id)
      .execute();
  }

  /** Record a commit once; later calls return the same record. */
  async recordCommit(
    sourceId: number,
    c: { sha: string; tree: string; committedAt: number; subject: string },
    now: number,
  ): Promise<CommitRecord> {
    const existing = await this.db
      .selectFrom('commits')
      .selectAll()
      .where('source_id', '=', sourceId)
      .where('sha', '=', c.sha)
      .executeTakeFirst();
    if (existing) return toCommit(existing);
    try {
      const row = await this.db
        .insertInto('commits')
        .values({
          source_id: sourceId,
          sha: c.sha,
          tree: c.tree,
          committed_at: c.committedAt,
          subject: c.subject.slice(0, 1000),
          recorded_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toCommit(row);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const row = await this.db
        .selectFrom('commits')
        .selectAll()
        .where('source_id', '=', sourceId)
        .where('sha', '=', c.sha)
        .executeTakeFirstOrThrow();
      return toCommit(row);
    }
  }

  async listCommits(sourceId: number, limit: number): Promise<CommitRecord[]> {
    const rows = await this.db
      .selectFrom('commits')
      .selectAll()
      .where('source_id', '=', sourceId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toCommit);
  }
}
