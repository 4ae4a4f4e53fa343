import type { Kysely } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { Database } from '../schema.js';
import { checkLease } from './check-lease.js';

/** Extend the current lease; a cancelled task answers `cancelled` so its agent stops. */
export async function heartbeat(
  db: Kysely<Database>,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  leaseMs: number,
  now: number,
): Promise<{ expiresAt: number; cancelled: boolean; agentId: number }> {
  try {
    return await db.transaction().execute(async (trx) => {
      const { lease, task } = await checkLease(trx, leaseId, fencingToken, agentTokenId, now);
      const expiresAt = now + leaseMs;
      const r = await trx
        .updateTable('tasks')
        .set({ lease_expires_at: expiresAt })
        .where('id', '=', task.id)
        .where('state', '=', 'leased')
        .where('fencing_token', '=', fencingToken)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1)
        throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands while heartbeating');
      await trx.updateTable('leases').set({ expires_at: expiresAt }).where('id', '=', lease.id).execute();
      return { expiresAt, cancelled: false, agentId: lease.agentId };
    });
  } catch (err) {
    // A cancelled task tells its agent to stop rather than failing the heartbeat with a bare error.
    if (err instanceof LenixError && err.code === 'LEASE_ENDED') {
      const l = await db.selectFrom('leases').selectAll().where('id', '=', leaseId).executeTakeFirst();
      if (l?.outcome === 'cancelled') return { expiresAt: Number(l.expires_at), cancelled: true, agentId: l.agent_id };
    }
    throw err;
  }
}
