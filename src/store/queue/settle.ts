import { sql } from 'kysely';
import { type BuildState, BUILD_KINDS, buildStateFromTasks, type TaskState } from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import type { Statements } from '../statements.js';

/** Recompute a build's state from its tasks; records the first failure's reason on the build. */
export async function settleBuild(q: Statements, buildId: number, now: number): Promise<BuildState> {
  const kinds = sql.join([...BUILD_KINDS]);
  const tasks = await q.rows(sql<{
    kind: string;
    state: string;
    reason_code: string | null;
    reason: string | null;
    arch: string;
  }>`
    select kind, state, reason_code, reason, arch from tasks
    where build_id = ${buildId} and kind in (${kinds})
    order by id`);
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
    await q.run(sql`
      update tasks set state = 'cancelled', finished_at = ${now}, reason_code = 'BUILD_FAILED',
        reason = 'another task of the build failed'
      where build_id = ${buildId} and kind in (${kinds}) and state = 'queued'`);
  }
  const changed = await q.run(sql`
    update builds set state = ${state}, finished_at = ${done ? now : null},
      reason_code = ${failed ? `${failed.reason_code ?? 'TASK_FAILED'}` : null},
      reason = ${failed ? `${failed.arch}: ${failed.reason ?? 'task failed'}` : null}
    where id = ${buildId} and state not in ('succeeded', 'failed', 'cancelled')`);
  if (changed === 1 && done) await recordEvent(q, now, `build.${state}`, buildId, null, {});
  return state;
}
