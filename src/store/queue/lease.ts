import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../dialect.js';
import type { AgentRecord, LeaseRecord, TaskRecord } from '../records.js';
import { isSerializationFailure, toLease, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { inTransaction } from '../statements.js';

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
  const arches = agent.arches.length > 0 ? agent.arches : ['-'];
  // PostgreSQL: concurrent leases skip rows another transaction is taking instead of queueing behind them.
  // SQLite has one writer at a time, so there is nothing to skip.
  const skipLocked = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return await inTransaction(db, async (q) => {
        const [candidate] = await q.rows(sql<{ id: number; fencing_token: number }>`
          select id, fencing_token from tasks
          where state = 'queued' and role = ${agent.role} and arch in (${sql.join(arches)})
          order by priority desc, vstart, id
          limit 1${skipLocked}`);
        if (!candidate) return null;
        const fencing = Number(candidate.fencing_token) + 1;
        const expiresAt = now + leaseMs;
        const [lease] = await q.rows(sql<Selectable<Database['leases']>>`
          insert into leases (task_id, agent_id, fencing_token, acquired_at, expires_at)
          values (${candidate.id}, ${agent.id}, ${fencing}, ${now}, ${expiresAt})
          returning *`);
        const [updated] = await q.rows(sql<Selectable<Database['tasks']>>`
          update tasks set state = 'leased', fencing_token = ${fencing}, attempts = attempts + 1,
            lease_id = ${lease!.id}, agent_id = ${agent.id}, lease_expires_at = ${expiresAt},
            started_at = coalesce(started_at, ${now})
          where id = ${candidate.id} and state = 'queued' and fencing_token = ${candidate.fencing_token}
          returning *`);
        if (!updated) throw new LostRace();
        await q.run(sql`
          update builds set state = 'running', started_at = coalesce(started_at, ${now})
          where id = ${updated.build_id} and state = 'queued'`);
        return { lease: toLease(lease!), task: toTask(updated) };
      });
    } catch (err) {
      if (err instanceof LostRace || isSerializationFailure(err)) continue;
      throw err;
    }
  }
  return null;
}
