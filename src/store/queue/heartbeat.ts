import { sql, type Kysely } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { Dialect } from '../dialect.js';
import type { Database } from '../schema.js';
import { inTransaction, withStatements } from '../statements.js';
import { checkLease } from './check-lease.js';

/** Extend the current lease; a cancelled task answers `cancelled` so its agent stops. */
export async function heartbeat(
  db: Kysely<Database>,
  dialect: Dialect,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  leaseMs: number,
  now: number,
): Promise<{ expiresAt: number; cancelled: boolean; agentId: number }> {
  const expiresAt = now + leaseMs;
  if (dialect === 'postgres') {
    const agentId = await heartbeatInOneStatement(db, leaseId, fencingToken, agentTokenId, expiresAt, now);
    if (agentId !== undefined) return { expiresAt, cancelled: false, agentId };
    // Refused: the checked transaction below finds the reason and fails with it (a cancelled task: `cancelled`).
  }
  try {
    return await inTransaction(db, async (q) => {
      const { lease, task } = await checkLease(q, leaseId, fencingToken, agentTokenId, now);
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

/**
 * PostgreSQL: the heartbeat of a current lease as one statement (one round trip where the checked
 * transaction takes five). It extends the lease only if every check of `checkLease` holds, with the task and
 * lease rows locked as they are checked; the agent's id if it did, `undefined` if not.
 */
async function heartbeatInOneStatement(
  db: Kysely<Database>,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  expiresAt: number,
  now: number,
): Promise<number | undefined> {
  const [row] = await withStatements(db, (q) =>
    q.rows(sql<{ agent_id: number }>`
      with held as (
        select leases.id, leases.agent_id, leases.task_id from leases
        join agents on agents.id = leases.agent_id
        join tasks on tasks.id = leases.task_id
        where leases.id = ${leaseId} and agents.token_id = ${agentTokenId}
          and leases.fencing_token = ${fencingToken} and leases.ended_at is null
          and tasks.lease_id = leases.id and tasks.fencing_token = ${fencingToken} and tasks.state = 'leased'
          and (tasks.lease_expires_at is null or tasks.lease_expires_at >= ${now})
        for update of tasks, leases
      ), task as (
        update tasks set lease_expires_at = ${expiresAt} from held where tasks.id = held.task_id
        returning held.id, held.agent_id
      ), lease as (
        update leases set expires_at = ${expiresAt} from task where leases.id = task.id
        returning task.agent_id
      )
      select agent_id from lease`),
  );
  return row?.agent_id;
}
