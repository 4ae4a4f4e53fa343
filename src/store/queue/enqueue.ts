import { sql, type Kysely } from 'kysely';
import { LenixError } from '../../core/errors.js';
import { currentVirtualTime, virtualStart } from '../../scheduler/fair-share.js';
import type { AgentRole, TaskKind } from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import { json, numOrNull } from '../rows.js';
import type { Database } from '../schema.js';
import { inTransaction, type Statements } from '../statements.js';

/**
 * Queue tasks, one per architecture, each at its fair-share virtual start (fair-share.ts): the role's
 * current virtual time, after the source's last task. Runs inside the caller's transaction.
 */
export async function enqueueTasks(
  q: Statements,
  t: {
    buildId: number;
    sourceId: number;
    priority: number;
    maxAttempts: number;
    role: AgentRole;
    kind: TaskKind;
    arches: readonly string[];
    now: number;
    subject?: Record<string, unknown>;
  },
): Promise<number[]> {
  const ids: number[] = [];
  for (const arch of t.arches) {
    // Each bound is the first entry of an index in its order (tasks_vqueue, tasks_vstart, tasks_source_vclock),
    // spelled so: as min()/max(), PostgreSQL with the queue's statistics stale read the role's whole range. The
    // role's bound orders by `vstart + 0`, as tasks_vstart does (migration 0026), so that the source's bound
    // cannot be answered by walking the role's tasks.
    const [clock] = await q.rows(sql<{ min_queued: number | null; max_all: number | null; last: number | null }>`
      select
        (select vstart from tasks where role = ${t.role} and state = 'queued' order by vstart limit 1) as min_queued,
        (select vstart from tasks where role = ${t.role} order by vstart + 0 desc limit 1) as max_all,
        (select vstart from tasks where source_id = ${t.sourceId} and role = ${t.role} order by vstart desc limit 1)
          as last`);
    const now = currentVirtualTime(numOrNull(clock?.min_queued), numOrNull(clock?.max_all));
    const vstart = virtualStart(now, numOrNull(clock?.last));
    const [row] = await q.rows(sql<{ id: number }>`
      insert into tasks (build_id, source_id, kind, role, arch, state, priority, vstart, attempts, max_attempts,
        fencing_token, cancel_requested, created_at, log_size, subject)
      values (${t.buildId}, ${t.sourceId}, ${t.kind}, ${t.role}, ${arch}, 'queued', ${t.priority}, ${vstart}, 0,
        ${t.maxAttempts}, 0, 0, ${t.now}, 0, ${t.subject === undefined ? null : json(t.subject)})
      returning id`);
    ids.push(row!.id);
  }
  return ids;
}

/** Queue one task outside the build pipeline (a `repomd` signing task for a publish, filed under a build of the release). */
export async function enqueueTask(
  db: Kysely<Database>,
  t: { buildId: number; role: AgentRole; kind: TaskKind; subject: Record<string, unknown>; maxAttempts: number },
  now: number,
): Promise<number> {
  return inTransaction(db, async (q) => {
    const [build] = await q.rows(sql<{ priority: number; source_id: number }>`
      select priority, source_id from builds where id = ${t.buildId}`);
    if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${t.buildId} does not exist`);
    const [id] = await enqueueTasks(q, {
      buildId: t.buildId,
      sourceId: build.source_id,
      priority: build.priority,
      maxAttempts: t.maxAttempts,
      role: t.role,
      kind: t.kind,
      arches: ['any'],
      now,
      subject: t.subject,
    });
    await recordEvent(q, now, `task.${t.kind}-queued`, t.buildId, id!, {});
    return id!;
  });
}
