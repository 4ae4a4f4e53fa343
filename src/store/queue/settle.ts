import { type BuildState, BUILD_KINDS, buildStateFromTasks, type TaskState } from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import type { Db } from '../rows.js';

/** Recompute a build's state from its tasks; records the first failure's reason on the build. */
export async function settleBuild(trx: Db, buildId: number, now: number): Promise<BuildState> {
  const tasks = await trx
    .selectFrom('tasks')
    .select(['kind', 'state', 'reason_code', 'reason', 'arch'])
    .where('build_id', '=', buildId)
    .where('kind', 'in', [...BUILD_KINDS])
    .orderBy('id')
    .execute();
  const srpmDone =
    tasks.some((t) => t.kind === 'srpm' && t.state === 'succeeded') && tasks.some((t) => t.kind !== 'srpm');
  const state = buildStateFromTasks(
    tasks.map((t) => t.state as TaskState),
    srpmDone,
  );
  const failed = tasks.find((t) => t.state === 'failed');
  const done = state === 'succeeded' || state === 'failed' || state === 'cancelled';
  if (state === 'failed') {
    // A failed task ends the build: tasks still queued for it will not run.
    await trx
      .updateTable('tasks')
      .set({
        state: 'cancelled',
        finished_at: now,
        reason_code: 'BUILD_FAILED',
        reason: 'another task of the build failed',
      })
      .where('build_id', '=', buildId)
      .where('kind', 'in', [...BUILD_KINDS])
      .where('state', '=', 'queued')
      .execute();
  }
  const r = await trx
    .updateTable('builds')
    .set({
      state,
      finished_at: done ? now : null,
      reason_code: failed ? `${failed.reason_code ?? 'TASK_FAILED'}` : null,
      reason: failed ? `${failed.arch}: ${failed.reason ?? 'task failed'}` : null,
    })
    .where('id', '=', buildId)
    .where('state', 'not in', ['succeeded', 'failed', 'cancelled'])
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) === 1 && done) await recordEvent(trx, now, `build.${state}`, buildId, null, {});
  return state;
}
