import type { Kysely, Selectable } from 'kysely';
import type { BatchRecord, BatchState } from './records.js';
import type { Database } from './schema.js';
import { json, numOrNull, parseJson } from './rows.js';

function toBatch(r: Selectable<Database['batches']>): BatchRecord {
  return {
    id: r.id,
    targetId: r.target_id,
    groups: parseJson<string[][]>(r.groups, []),
    builds: parseJson<number[][]>(r.builds, []),
    state: r.state as BatchState,
    reason: r.reason,
    createdBy: r.created_by,
    createdAt: Number(r.created_at),
    finishedAt: numOrNull(r.finished_at),
  };
}

/** Batches (chain builds): their groups of sources and the builds started for them. */
export class BatchStore {
  constructor(readonly db: Kysely<Database>) {}

  async create(b: { targetId: number; groups: readonly (readonly string[])[]; createdBy: string }, now: number) {
    const row = await this.db
      .insertInto('batches')
      .values({
        target_id: b.targetId,
        groups: json(b.groups),
        builds: json([]),
        state: 'running',
        reason: null,
        created_by: b.createdBy,
        created_at: now,
        finished_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toBatch(row);
  }

  async get(id: number): Promise<BatchRecord | null> {
    const row = await this.db.selectFrom('batches').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toBatch(row) : null;
  }

  async list(limit: number): Promise<BatchRecord[]> {
    return (await this.db.selectFrom('batches').selectAll().orderBy('id', 'desc').limit(limit).execute()).map(toBatch);
  }

  async running(): Promise<BatchRecord[]> {
    return (await this.db.selectFrom('batches').selectAll().where('state', '=', 'running').execute()).map(toBatch);
  }

  /** Record the builds of the next group, only while the batch is still running with the groups seen so far. */
  async startedGroup(id: number, started: number, builds: readonly number[]): Promise<boolean> {
    const b = await this.get(id);
    if (b?.state !== 'running' || b.builds.length !== started) return false;
    const r = await this.db
      .updateTable('batches')
      .set({ builds: json([...b.builds, builds]) })
      .where('id', '=', id)
      .where('state', '=', 'running')
      .where('builds', '=', json(b.builds))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async setBuilds(id: number, builds: readonly (readonly number[])[]): Promise<void> {
    await this.db
      .updateTable('batches')
      .set({ builds: json(builds) })
      .where('id', '=', id)
      .execute();
  }

  /** End a running batch; false when it had ended already. */
  async finish(
    id: number,
    state: Exclude<BatchState, 'running'>,
    reason: string | null,
    now: number,
  ): Promise<boolean> {
    const r = await this.db
      .updateTable('batches')
      .set({ state, reason, finished_at: now })
      .where('id', '=', id)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
}
