import { sql, type Kysely, type Selectable } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { Dialect } from '../dialect.js';
import type { AgentRecord, BuildRecord, LeaseRecord, TaskRecord } from '../records.js';
import { type BuildRow, isSerializationFailure, toBuild, toLease, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { inTransaction, withStatements } from '../statements.js';

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
 * among queued tasks of its role and architectures, none of them of `skipBuild` (a completion's own build: see
 * complete.ts). The conditional update is the fence between processes. On PostgreSQL, where server replicas
 * lease side by side, the same in one call of `lenix_lease` (below).
 */
export async function lease(
  db: Kysely<Database>,
  dialect: Dialect,
  agent: AgentRecord,
  leaseMs: number,
  now: number,
  /** The build's row by id (on SQLite, a prepared read: `readById`). */
  buildById: (id: number) => Promise<BuildRow | undefined>,
  skipBuild: number | null = null,
): Promise<LeaseGrant | null> {
  if (dialect === 'postgres') {
    const [row] = await withStatements(db, (q) =>
      q.rows(sql<LeaseFunctionRow>`
        select * from lenix_lease(${agent.id}::integer, ${agent.role}::text, ${archesOf(agent)}::text[],
          ${now}::bigint, ${leaseMs}::bigint, ${skipBuild}::integer)`),
    );
    return row ? fromLeaseFunction(row) : null;
  }
  const granted = await leaseInTransaction(db, agent, archesOf(agent), leaseMs, now, skipBuild);
  if (!granted) return null;
  // On SQLite a read by id after the transaction costs microseconds, in this process.
  const row = await buildById(granted.task.buildId);
  if (!row) throw new LenixError('BUILD_NOT_FOUND', `build ${granted.task.buildId} vanished`);
  return { ...granted, build: toBuild(row) };
}

/** The architectures an agent leases for (one that names none matches no task). */
export function archesOf(agent: AgentRecord): string[] {
  return agent.arches.length > 0 ? [...agent.arches] : ['-'];
}

async function leaseInTransaction(
  db: Kysely<Database>,
  agent: AgentRecord,
  arches: readonly string[],
  leaseMs: number,
  now: number,
  skipBuild: number | null,
): Promise<Omit<LeaseGrant, 'build'> | null> {
  const skip = skipBuild === null ? sql`` : sql` and build_id <> ${skipBuild}`;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return await inTransaction(db, async (q) => {
        const [candidate] = await q.rows(sql<{ id: number; fencing_token: number }>`
          select id, fencing_token from tasks
          where state = 'queued' and role = ${agent.role} and arch in (${sql.join(arches)})${skip}
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
 * What `lenix_lease` (migration 0025) answers, and `lenix_complete_and_lease` beside its completion: the task,
 * the lease and the build as the lease left them, as JSON rows, and the build's source and commit. The lease
 * is one statement: the candidate is locked as it is chosen, and a concurrent lease skips it (`for update skip
 * locked`) rather than queueing behind it, so no other lease can take it before the update.
 */
export interface LeaseFunctionRow {
  o_task: Selectable<Database['tasks']> | null;
  o_lease: Selectable<Database['leases']> | null;
  o_build: Selectable<Database['builds']> | null;
  o_source_name: string | null;
  o_commit_sha: string | null;
  o_commit_tree: string | null;
  o_commit_committed_at: number | null;
  o_commit_subject: string | null;
}

/** The grant in a `LeaseFunctionRow` (its columns absent or null when no task was leased), or null. */
export function fromLeaseFunction(row: Partial<LeaseFunctionRow>): LeaseGrant | null {
  const { o_task: task, o_lease: lease, o_build: build, o_source_name: sourceName, o_commit_sha: sha } = row;
  if (!task) return null;
  // One statement joins them: a task comes with all of them.
  if (!lease || !build || !sourceName || !sha || !row.o_commit_tree)
    throw new LenixError('INTERNAL', `the lease of task ${task.id} came back without its lease or build`);
  return {
    lease: toLease(lease),
    task: toTask(task),
    build: toBuild({
      ...build,
      source_name: sourceName,
      commit_sha: sha,
      commit_tree: row.o_commit_tree,
      commit_committed_at: Number(row.o_commit_committed_at),
      commit_subject: row.o_commit_subject ?? '',
    }),
  };
}
