import type { Kysely } from 'kysely';
import { LenixError } from '../../core/errors.js';
import {
  BUILD_KINDS,
  type BuildState,
  type FollowUp,
  nextStage,
  type Outcome,
  taskEnd,
} from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import type { TaskRecord } from '../records.js';
import { json, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { checkLease } from './check-lease.js';
import { enqueueTasks } from './enqueue.js';
import { settleBuild } from './settle.js';
import { parseTaskResult } from '../../core/protocol.js';

export interface CompleteResult {
  readonly task: TaskRecord;
  readonly buildState: BuildState;
  readonly queuedNew: number;
}

/**
 * End a lease. Accepted once, for the current fencing token only. On success the follow-up (fan-out into
 * binary tasks, or failing the build) is applied in the same transaction, so a crash never leaves a
 * succeeded SRPM task without its binary tasks.
 */
export async function complete(
  db: Kysely<Database>,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  outcome: Outcome,
  /** The agent's report, parsed here by the task's kind (core/protocol.ts) before it is stored. */
  report: unknown,
  followUp: FollowUp,
  now: number,
): Promise<CompleteResult> {
  return db.transaction().execute(async (trx) => {
    const { task: current } = await checkLease(trx, leaseId, fencingToken, agentTokenId, now);
    const result = parseTaskResult(current.kind, report);
    const row = {
      ...current,
      build_id: current.buildId,
      max_attempts: current.maxAttempts,
      result: current.result === null ? null : json(current.result),
    };
    const next = taskEnd(outcome, current.attempts, current.maxAttempts, followUp);
    const finished = next.state !== 'queued';
    const updated = await trx
      .updateTable('tasks')
      .set({
        state: next.state,
        reason_code: next.code,
        reason: next.reason,
        result: result === null ? row.result : json(result),
        finished_at: finished ? now : null,
        lease_expires_at: null,
        ...(finished ? {} : { lease_id: null, agent_id: null }),
      })
      .where('id', '=', row.id)
      .where('state', '=', 'leased')
      .where('fencing_token', '=', fencingToken)
      .returningAll()
      .executeTakeFirst();
    if (!updated) throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands before completion');
    await trx.updateTable('leases').set({ ended_at: now, outcome: outcome.kind }).where('id', '=', leaseId).execute();
    await recordEvent(trx, now, `task.${next.state}`, row.build_id, row.id, { code: next.code, reason: next.reason });

    let queuedNew = 0;
    if (next.state === 'succeeded' && followUp.kind === 'fan-out') {
      const build = await trx
        .selectFrom('builds')
        .select(['priority', 'source_id'])
        .where('id', '=', row.build_id)
        .executeTakeFirstOrThrow();
      const ids = await enqueueTasks(trx, {
        buildId: row.build_id,
        sourceId: build.source_id,
        priority: build.priority,
        maxAttempts: row.max_attempts,
        role: followUp.role,
        kind: followUp.taskKind,
        arches: followUp.arches,
        now,
      });
      queuedNew = ids.length;
      await recordEvent(trx, now, 'build.fanned-out', row.build_id, row.id, { arches: followUp.arches });
    }
    // Only the pipeline's own tasks move the build; sign/test/repomd tasks leave its state alone.
    const buildState = BUILD_KINDS.includes(row.kind)
      ? await settleBuild(trx, row.build_id, now)
      : ((await trx.selectFrom('builds').select('state').where('id', '=', row.build_id).executeTakeFirstOrThrow())
          .state as BuildState);
    if (next.state === 'succeeded') {
      const signing =
        (await trx.selectFrom('settings').select('value').where('key', '=', 'signing_key').executeTakeFirst()) !==
        undefined;
      const stage = nextStage(row.kind, buildState, signing);
      if (stage) {
        const build = await trx
          .selectFrom('builds')
          .select(['priority', 'source_id'])
          .where('id', '=', row.build_id)
          .executeTakeFirstOrThrow();
        queuedNew += (
          await enqueueTasks(trx, {
            buildId: row.build_id,
            sourceId: build.source_id,
            priority: build.priority,
            maxAttempts: row.max_attempts,
            role: stage.role,
            kind: stage.kind,
            arches: ['any'],
            now,
          })
        ).length;
        await recordEvent(trx, now, `build.${stage.kind}-queued`, row.build_id, row.id, {});
      }
    }
    return { task: toTask(updated), buildState, queuedNew };
  });
}
