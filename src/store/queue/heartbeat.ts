import { sql, type Kysely } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { Database } from '../schema.js';
import { inTransaction } from '../statements.js';
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
    return await inTransaction(db, async (q) => {
      const { lease, task } = await checkLease(q, leaseId, fencingToken, agentTokenId, now);
      const expiresAt = now + leaseMs;
      const changed = await q.run(sql`
        update tasks set lease_expires_at = ${expiresAt}
        where id = ${task.id} and state = 'leased' and fencing_token = ${fencingToken}`);
      if (changed !== 1) throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands while heartbeating');
      await q.run(sql`update leases set expires_at = ${expiresAt} where id = ${lease.id}`);
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
