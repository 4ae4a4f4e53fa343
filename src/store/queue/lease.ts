import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../dialect.js';
import type { AgentRecord, LeaseRecord, TaskRecord } from '../records.js';
import { isSerializationFailure, toLease, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { inTransaction, withStatements } from '../statements.js';
import { fromLeaseRow, LEASE_COLUMNS, type LeaseRow } from './check-lease.js';

export interface LeaseGrant {
  readonly lease: LeaseRecord;
  readonly task: TaskRecord;
}

/** Thrown inside a lease transaction when another process took the same task first. */
class LostRace extends Error {}

/**
 * Hand the next task to an agent: highest priority, then smallest fair-share virtual start (fair-share.ts),
 * among queued tasks of its role and architectures. The conditional update is the fence between processes.
 * On PostgreSQL, where server replicas lease side by side, the same in one statement (below).
 */
export async function lease(
  db: Kysely<Database>,
  dialect: Dialect,
  agent: AgentRecord,
  leaseMs: number,
  now: number,
): Promise<LeaseGrant | null> {
  const arches = agent.arches.length > 0 ? agent.arches : ['-'];
  if (dialect === 'postgres') return leaseInOneStatement(db, agent, arches, leaseMs, now);
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return await inTransaction(db, async (q) => {
        const [candidate] = await q.rows(sql<{ id: number; fencing_token: number }>`
          select id, fencing_token from tasks
          where state = 'queued' and role = ${agent.role} and arch in (${sql.join(arches)})
          order by priority desc, vstart, id
          limit 1`);
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

/**
 * The same lease on PostgreSQL, as one statement: one round trip where the transaction above takes six (each
 * costs both processes a write and a wake-up). The candidate is locked as it is chosen, and a concurrent lease
 * skips it (`for update skip locked`) rather than queueing behind it, so no other lease can take it before the
 * update; the statement commits on its own.
 */
async function leaseInOneStatement(
  db: Kysely<Database>,
  agent: AgentRecord,
  arches: readonly string[],
  leaseMs: number,
  now: number,
): Promise<LeaseGrant | null> {
  const [row] = await withStatements(db, (q) =>
    q.rows(sql<LeaseRow>`
      with candidate as (
        select id, fencing_token from tasks
        where state = 'queued' and role = ${agent.role} and arch in (${sql.join(arches)})
        order by priority desc, vstart, id
        limit 1 for update skip locked
      ), lease as (
        insert into leases (task_id, agent_id, fencing_token, acquired_at, expires_at)
        select id, ${agent.id}, fencing_token + 1, ${now}, ${now + leaseMs} from candidate
        returning *
      ), task as (
        update tasks set state = 'leased', fencing_token = lease.fencing_token, attempts = tasks.attempts + 1,
          lease_id = lease.id, agent_id = lease.agent_id, lease_expires_at = lease.expires_at,
          started_at = coalesce(tasks.started_at, ${now})
        from lease where tasks.id = lease.task_id
        returning tasks.*
      ), build as (
        update builds set state = 'running', started_at = coalesce(builds.started_at, ${now})
        from task where builds.id = task.build_id and builds.state = 'queued'
      )
      select tasks.*, ${LEASE_COLUMNS} from task as tasks join lease as leases on leases.task_id = tasks.id`),
  );
  return row ? fromLeaseRow(row) : null;
}
