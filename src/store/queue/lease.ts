import { sql, type Kysely, type Selectable } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { Dialect } from '../dialect.js';
import type { AgentRecord, BuildRecord, LeaseRecord, TaskRecord } from '../records.js';
import { type BuildRow, isSerializationFailure, toBuild, toLease, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { inTransaction, withStatements } from '../statements.js';
import { fromLeaseRow, LEASE_COLUMNS, type LeaseRow } from './check-lease.js';

export interface LeaseGrant {
  readonly lease: LeaseRecord;
  readonly task: TaskRecord;
  /** The task's build as the lease left it (running): what the agent's payload is made from. */
  readonly build: BuildRecord;
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
  /** The build's row by id (on SQLite, a prepared read: `readById`). */
  buildById: (id: number) => Promise<BuildRow | undefined>,
): Promise<LeaseGrant | null> {
  const arches = agent.arches.length > 0 ? agent.arches : ['-'];
  if (dialect === 'postgres') return leaseInOneStatement(db, agent, arches, leaseMs, now);
  const granted = await leaseInTransaction(db, agent, arches, leaseMs, now);
  if (!granted) return null;
  // On SQLite a read by id after the transaction costs microseconds, in this process.
  const row = await buildById(granted.task.buildId);
  if (!row) throw new LenixError('BUILD_NOT_FOUND', `build ${granted.task.buildId} vanished`);
  return { ...granted, build: toBuild(row) };
}

async function leaseInTransaction(
  db: Kysely<Database>,
  agent: AgentRecord,
  arches: readonly string[],
  leaseMs: number,
  now: number,
): Promise<Omit<LeaseGrant, 'build'> | null> {
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
            lease_id = ${lease!.id}, agent_id = ${agent.id}, started_at = coalesce(started_at, ${now})
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
 * The same lease on PostgreSQL, as one statement: one round trip where the transaction above and the build's
 * read take seven (each costs both processes a write and a wake-up). The candidate is locked as it is chosen,
 * and a concurrent lease skips it (`for update skip locked`) rather than queueing behind it, so no other lease
 * can take it before the update; the statement commits on its own. The build comes back as one JSON object:
 * its row as the statement found it, with what the lease changed in it laid over (a statement's parts all see
 * the rows as they were when it began), and its source's name and commit beside.
 */
async function leaseInOneStatement(
  db: Kysely<Database>,
  agent: AgentRecord,
  arches: readonly string[],
  leaseMs: number,
  now: number,
): Promise<LeaseGrant | null> {
  const [row] = await withStatements(db, (q) =>
    q.rows(sql<LeaseRow & { b_build: BuildRow }>`
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
          lease_id = lease.id, agent_id = lease.agent_id, started_at = coalesce(tasks.started_at, ${now})
        from lease where tasks.id = lease.task_id
        returning tasks.*
      ), build as (
        update builds set state = 'running', started_at = coalesce(builds.started_at, ${now})
        from task where builds.id = task.build_id and builds.state = 'queued'
        returning builds.id, builds.state, builds.started_at
      )
      select tasks.*, ${LEASE_COLUMNS},
        to_jsonb(b) || coalesce(to_jsonb(build), '{}') || jsonb_build_object('source_name', sources.name,
          'commit_sha', commits.sha, 'commit_tree', commits.tree, 'commit_committed_at', commits.committed_at,
          'commit_subject', commits.subject) as b_build
      from task as tasks join lease as leases on leases.task_id = tasks.id
      join builds as b on b.id = tasks.build_id
      join sources on sources.id = b.source_id
      join commits on commits.id = b.commit_id
      left join build on build.id = b.id`),
  );
  return row ? { ...fromLeaseRow(row), build: toBuild(row.b_build) } : null;
}
