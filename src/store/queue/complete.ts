import { sql, type Kysely, type Selectable } from 'kysely';
import { isErrorCode, LenixError } from '../../core/errors.js';
import type { Dialect } from '../dialect.js';
import {
  BUILD_KINDS,
  type BuildState,
  type FollowUp,
  nextStage,
  type Outcome,
  type TaskKind,
  taskEnd,
} from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import type { AgentRecord, TaskRecord } from '../records.js';
import { json, toTask } from '../rows.js';
import { inTransaction, type Statements, withStatements } from '../statements.js';
import type { Database } from '../schema.js';
import { checkLease } from './check-lease.js';
import { archesOf, fromLeaseFunction, type LeaseFunctionRow, type LeaseGrant } from './lease.js';
import { enqueueTasks } from './enqueue.js';
import { settleBuild } from './settle.js';
import { parseTaskResult } from '../../core/protocol.js';

export interface CompleteResult {
  readonly task: TaskRecord;
  readonly buildState: BuildState;
  /** The build's batch, if it is part of one (a batch follows its builds' failures). */
  readonly batchId: number | null;
  readonly queuedNew: number;
}

/** The agent whose next task a completion leases in the same call (`lenix_complete_and_lease` on PostgreSQL). */
export interface NextLease {
  readonly agent: AgentRecord;
  readonly leaseMs: number;
}

/** What leasing the next task gave: a task, none, or why it failed (the completion stands either way). */
export type NextGrant = { readonly grant: LeaseGrant | null; readonly error: string | null };

/**
 * End a lease. Accepted once, for the current fencing token only. On success the follow-up (fan-out into
 * binary tasks, or failing the build) is applied in the same transaction, so a crash never leaves a
 * succeeded SRPM task without its binary tasks.
 */
export async function complete(
  db: Kysely<Database>,
  dialect: Dialect,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  outcome: Outcome,
  /** The agent's report, parsed here by the task's kind (core/protocol.ts) before it is stored. */
  report: unknown,
  followUp: FollowUp,
  now: number,
): Promise<CompleteResult> {
  if (dialect === 'postgres')
    return (await completeInOneCall(db, leaseId, fencingToken, agentTokenId, outcome, report, followUp, now, null))
      .done;
  return inTransaction(db, async (q) => {
    const { task: current } = await checkLease(q, leaseId, fencingToken, agentTokenId, now);
    const result = parseTaskResult(current.kind, report);
    const next = taskEnd(outcome, current.attempts, current.maxAttempts, followUp);
    const finished = next.state !== 'queued';
    const stored = result === null ? (current.result === null ? null : json(current.result)) : json(result);
    // A task queued again (a retry) gives up its lease and agent; a finished one keeps them as its history.
    const release = finished ? sql`` : sql`, lease_id = null, agent_id = null`;
    const [updated] = await q.rows(sql<Selectable<Database['tasks']>>`
      update tasks set state = ${next.state}, reason_code = ${next.code}, reason = ${next.reason},
        result = ${stored}, finished_at = ${finished ? now : null}${release}
      where id = ${current.id} and state = 'leased' and fencing_token = ${fencingToken}
      returning *`);
    if (!updated) throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands before completion');
    await q.run(sql`update leases set ended_at = ${now}, outcome = ${outcome.kind} where id = ${leaseId}`);
    await recordEvent(q, now, `task.${next.state}`, current.buildId, current.id, {
      code: next.code,
      reason: next.reason,
    });

    const [build] = await q.rows(sql<{ priority: number; source_id: number; batch_id: number | null }>`
      select priority, source_id, batch_id from builds where id = ${current.buildId}`);
    if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${current.buildId} vanished`);
    const buildOf = { buildId: current.buildId, sourceId: build.source_id, priority: build.priority };
    let queuedNew = 0;
    if (next.state === 'succeeded' && followUp.kind === 'fan-out') {
      const ids = await enqueueTasks(q, {
        ...buildOf,
        maxAttempts: current.maxAttempts,
        role: followUp.role,
        kind: followUp.taskKind,
        arches: followUp.arches,
        now,
      });
      queuedNew = ids.length;
      await recordEvent(q, now, 'build.fanned-out', current.buildId, current.id, { arches: followUp.arches });
    }
    // Only the pipeline's own tasks move the build; sign/test/repomd tasks leave its state alone.
    const buildState = BUILD_KINDS.includes(current.kind)
      ? await settleBuild(q, current.buildId, now)
      : await buildStateOf(q, current.buildId);
    if (next.state === 'succeeded') {
      const [signingKey] = await q.rows(sql<{ value: string }>`select value from settings where key = 'signing_key'`);
      const stage = nextStage(current.kind, buildState, signingKey !== undefined);
      if (stage) {
        queuedNew += (
          await enqueueTasks(q, {
            ...buildOf,
            maxAttempts: current.maxAttempts,
            role: stage.role,
            kind: stage.kind,
            arches: ['any'],
            now,
          })
        ).length;
        await recordEvent(q, now, `build.${stage.kind}-queued`, current.buildId, current.id, {});
      }
    }
    return { task: toTask(updated), buildState, batchId: build.batch_id, queuedNew };
  });
}

/**
 * A completion, then the agent's next task, never one of the completed task's build: what the completion
 * queues (the build's next stage) may be leased only once its statement is in the ledger, which the caller
 * records after this returns. On PostgreSQL both in one call (`lenix_complete_and_lease`, migration 0025), the
 * lease in a block of its own; on SQLite one transaction after the other. Whatever goes wrong in the lease
 * leaves the completion recorded: it comes back as `next.error`.
 */
export async function completeAndLease(
  db: Kysely<Database>,
  dialect: Dialect,
  next: NextLease,
  /** The next task's lease on SQLite (queue/lease.ts with its prepared read of the build). */
  leaseOnSqlite: (skipBuild: number) => Promise<LeaseGrant | null>,
  ...completion: CompletionArgs
): Promise<CompleteResult & { readonly next: NextGrant }> {
  if (dialect === 'postgres') {
    const r = await completeInOneCall(db, ...completion, next);
    return { ...r.done, next: r.next ?? { grant: null, error: null } };
  }
  const done = await complete(db, dialect, ...completion);
  try {
    return { ...done, next: { grant: await leaseOnSqlite(done.task.buildId), error: null } };
  } catch (err) {
    return { ...done, next: { grant: null, error: (err as Error).message } };
  }
}

/** `complete`'s arguments after the database and its dialect. */
export type CompletionArgs = Parameters<typeof complete> extends [unknown, unknown, ...infer R] ? R : never;

/**
 * The completion on PostgreSQL, as one call of `lenix_complete` (migrations 0021–0023: the rules above in
 * PL/pgSQL, one round trip where the transaction takes ten), or of `lenix_complete_and_lease` with the agent's
 * next lease. What needs no row is decided here and passed in; a report is parsed by its task's kind first,
 * read on its own (a lease's task and a task's kind never change).
 */
async function completeInOneCall(
  db: Kysely<Database>,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  outcome: Outcome,
  report: unknown,
  followUp: FollowUp,
  now: number,
  next: NextLease | null,
): Promise<{ done: CompleteResult; next: NextGrant | null }> {
  return withStatements(db, async (q) => {
    let result: string | null = null;
    if (report !== null && report !== undefined) {
      // As on SQLite, whose lease it is comes before what its report says.
      const [task] = await q.rows(sql<{ kind: TaskKind; token_id: number }>`
        select tasks.kind, agents.token_id from leases
        join tasks on tasks.id = leases.task_id join agents on agents.id = leases.agent_id
        where leases.id = ${leaseId}`);
      if (!task) throw new LenixError('LEASE_NOT_FOUND', `lease ${leaseId} does not exist`);
      if (task.token_id !== agentTokenId)
        throw new LenixError('FORBIDDEN', `lease ${leaseId} belongs to another agent`);
      const parsed = parseTaskResult(task.kind, report);
      result = parsed === null ? null : json(parsed);
    }
    const code = outcome.kind === 'success' ? null : outcome.code;
    const reason = outcome.kind === 'success' ? null : outcome.reason;
    const fanOut = followUp.kind === 'fan-out' ? followUp : null;
    const failBuild = followUp.kind === 'fail-build' ? followUp : null;
    const args = sql`
        ${leaseId}::integer, ${fencingToken}::bigint, ${agentTokenId}::integer, ${now}::bigint,
        ${outcome.kind}::text, ${code}::text, ${reason}::text, ${result}::text,
        ${followUp.kind}::text, ${fanOut?.role ?? null}::text, ${fanOut?.taskKind ?? null}::text,
        ${fanOut ? [...fanOut.arches] : null}::text[], ${failBuild?.code ?? null}::text,
        ${failBuild?.reason ?? null}::text, ${[...BUILD_KINDS]}::text[]`;
    const call = next
      ? sql`lenix_complete_and_lease(${args}, ${next.agent.id}::integer, ${next.agent.role}::text,
          ${archesOf(next.agent)}::text[], ${next.leaseMs}::bigint)`
      : sql`lenix_complete(${args})`;
    const [row] = await q.rows(
      sql<
        {
          error_code: string | null;
          error_message: string | null;
          build_state: BuildState;
          queued_new: number;
          task: Selectable<Database['tasks']>;
          batch_id: number | null;
        } & Partial<LeaseFunctionRow & { next_error: string | null }>
      >`select * from ${call}`,
    );
    if (!row) throw new LenixError('INTERNAL', 'lenix_complete answered no row');
    if (row.error_code !== null)
      throw new LenixError(
        isErrorCode(row.error_code) ? row.error_code : 'INTERNAL',
        row.error_message ?? row.error_code,
      );
    const done = {
      task: toTask(row.task),
      buildState: row.build_state,
      batchId: row.batch_id,
      queuedNew: row.queued_new,
    };
    if (!next) return { done, next: null };
    // The completion is committed: nothing about the next task may turn it into an error.
    try {
      return { done, next: { grant: fromLeaseFunction(row), error: row.next_error ?? null } };
    } catch (err) {
      return { done, next: { grant: null, error: (err as Error).message } };
    }
  });
}

async function buildStateOf(q: Statements, buildId: number): Promise<BuildState> {
  const [build] = await q.rows(sql<{ state: string }>`select state from builds where id = ${buildId}`);
  if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${buildId} vanished`);
  return build.state as BuildState;
}
