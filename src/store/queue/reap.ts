import type { Kysely } from 'kysely';
import { afterLostAttempt } from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import type { TaskRecord } from '../records.js';
import { toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { kyselyStatements } from '../statements.js';
import { settleBuild } from './settle.js';

/**
 * Requeue (or fail, when attempts are used up) every task whose lease has expired. The open leases are read
 * through their partial index (as many as tasks running); their tasks are changed only if still held by them.
 */
export async function reapExpired(db: Kysely<Database>, now: number): Promise<TaskRecord[]> {
  const expired = await db
    .selectFrom('leases')
    .innerJoin('tasks', 'tasks.id', 'leases.task_id')
    .selectAll('tasks')
    .where('leases.ended_at', 'is', null)
    .where('leases.expires_at', '<', now)
    .where('tasks.state', '=', 'leased')
    .whereRef('tasks.lease_id', '=', 'leases.id')
    .limit(500)
    .execute();
  const changed: TaskRecord[] = [];
  for (const row of expired) {
    const next = afterLostAttempt(
      row.attempts,
      row.max_attempts,
      'LEASE_EXPIRED',
      `lease ${row.lease_id} expired without a heartbeat`,
    );
    const done = await db.transaction().execute(async (trx) => {
      const set =
        next.state === 'queued'
          ? {
              state: 'queued',
              lease_id: null,
              agent_id: null,
              reason_code: 'LEASE_EXPIRED',
              reason: `lease ${row.lease_id} expired; requeued`,
            }
          : {
              state: 'failed',
              finished_at: now,
              reason_code: next.code,
              reason: next.reason,
            };
      const r = await trx
        .updateTable('tasks')
        .set(set)
        .where('id', '=', row.id)
        .where('state', '=', 'leased')
        .where('fencing_token', '=', row.fencing_token)
        .returningAll()
        .executeTakeFirst();
      if (!r) return null;
      const q = kyselyStatements(trx);
      await trx
        .updateTable('leases')
        .set({ ended_at: now, outcome: 'expired' })
        .where('id', '=', row.lease_id ?? -1)
        .execute();
      await recordEvent(q, now, next.state === 'queued' ? 'task.requeued' : 'task.failed', row.build_id, row.id, {
        reason: set.reason,
      });
      if (next.state === 'failed') await settleBuild(q, row.build_id, now);
      return toTask(r);
    });
    if (done) changed.push(done);
  }
  return changed;
}
