import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';

/**
 * Undo a lease whose work could not be handed out because its inputs are not ready yet (an earlier stage's
 * statement not in the ledger): the task is queued again and the attempt not counted. Conditional on the
 * lease being current, like every change of a task's state. True when it was given back.
 */
export async function giveBack(
  db: Kysely<Database>,
  leaseId: number,
  fencingToken: number,
  now: number,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('tasks')
      .set({
        state: 'queued',
        attempts: sql<number>`attempts - 1`,
        lease_id: null,
        agent_id: null,
      })
      .where('lease_id', '=', leaseId)
      .where('state', '=', 'leased')
      .where('fencing_token', '=', fencingToken)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await trx.updateTable('leases').set({ ended_at: now, outcome: 'returned' }).where('id', '=', leaseId).execute();
    return true;
  });
}
