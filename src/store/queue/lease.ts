import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';
import type { AgentRecord, LeaseRecord, TaskRecord } from '../records.js';
import { isSerializationFailure, toLease, toTask } from '../rows.js';
import type { Database } from '../schema.js';

export interface LeaseGrant {
  readonly lease: LeaseRecord;
  readonly task: TaskRecord;
}

/** Thrown inside a lease transaction when another server replica took the same task first. */
class LostRace extends Error {}

/**
 * Hand the next task to an agent: highest priority, then smallest fair-share virtual start (fair-share.ts),
 * among queued tasks of its role and architectures. The conditional update is the fence between replicas.
 */
export async function lease(
  db: Kysely<Database>,
  dialect: Dialect,
  agent: AgentRecord,
  leaseMs: number,
  now: number,
): Promise<LeaseGrant | null> {
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        let pick = trx
          .selectFrom('tasks')
          .select(['id', 'fencing_token', 'attempts'])
          .where('state', '=', 'queued')
          .where('role', '=', agent.role)
          .where('arch', 'in', agent.arches.length > 0 ? [...agent.arches] : ['-'])
          .orderBy('priority', 'desc')
          .orderBy('vstart', 'asc')
          .orderBy('id', 'asc')
          .limit(1);
        // PostgreSQL: concurrent leases skip rows another transaction is taking instead of queueing behind
        // them. SQLite has one writer at a time, so there is nothing to skip.
        if (dialect === 'postgres') pick = pick.forUpdate().skipLocked();
        const candidate = await pick.executeTakeFirst();
        if (!candidate) return null;
        const fencing = Number(candidate.fencing_token) + 1;
        const expiresAt = now + leaseMs;
        const lease = await trx
          .insertInto('leases')
          .values({
            task_id: candidate.id,
            agent_id: agent.id,
            fencing_token: fencing,
            acquired_at: now,
            expires_at: expiresAt,
            ended_at: null,
            outcome: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        const updated = await trx
          .updateTable('tasks')
          .set({
            state: 'leased',
            fencing_token: fencing,
            attempts: candidate.attempts + 1,
            lease_id: lease.id,
            agent_id: agent.id,
            lease_expires_at: expiresAt,
            started_at: sql<number>`coalesce(started_at, ${now})`,
          })
          .where('id', '=', candidate.id)
          .where('state', '=', 'queued')
          .where('fencing_token', '=', candidate.fencing_token)
          .returningAll()
          .executeTakeFirst();
        if (!updated) throw new LostRace();
        await trx
          .updateTable('builds')
          .set({ state: 'running', started_at: sql<number>`coalesce(started_at, ${now})` })
          .where('id', '=', updated.build_id)
          .where('state', '=', 'queued')
          .execute();
        return { lease: toLease(lease), task: toTask(updated) };
      });
    } catch (err) {
      if (err instanceof LostRace || isSerializationFailure(err)) continue;
      throw err;
    }
  }
  return null;
}
