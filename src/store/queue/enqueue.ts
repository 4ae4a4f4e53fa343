import type { Kysely } from 'kysely';
import { currentVirtualTime, virtualStart } from '../../scheduler/fair-share.js';
import type { AgentRole, TaskKind } from '../../scheduler/task-state.js';
import { recordEvent } from '../events.js';
import { type Db, json, numOrNull } from '../rows.js';
import type { Database } from '../schema.js';

/**
 * Queue tasks, one per architecture, each at its fair-share virtual start (fair-share.ts): the role's
 * current virtual time, after the source's last task. Runs inside the caller's transaction.
 */
export async function enqueueTasks(
  trx: Db,
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
    const clock = await trx
      .selectFrom('tasks')
      .select((eb) => [eb.fn.min<number>('vstart').as('min_queued')])
      .where('role', '=', t.role)
      .where('state', '=', 'queued')
      .executeTakeFirst();
    const maxAll = await trx
      .selectFrom('tasks')
      .select((eb) => eb.fn.max<number>('vstart').as('m'))
      .where('role', '=', t.role)
      .executeTakeFirst();
    const last = await trx
      .selectFrom('tasks')
      .select((eb) => eb.fn.max<number>('vstart').as('m'))
      .where('source_id', '=', t.sourceId)
      .where('role', '=', t.role)
      .executeTakeFirst();
    const now = currentVirtualTime(numOrNull(clock?.min_queued), numOrNull(maxAll?.m));
    const vstart = virtualStart(now, numOrNull(last?.m));
    const row = await trx
      .insertInto('tasks')
      .values({
        build_id: t.buildId,
        source_id: t.sourceId,
        kind: t.kind,
        role: t.role,
        arch,
        state: 'queued',
        priority: t.priority,
        vstart,
        attempts: 0,
        max_attempts: t.maxAttempts,
        fencing_token: 0,
        lease_id: null,
        agent_id: null,
        lease_expires_at: null,
        cancel_requested: 0,
        created_at: t.now,
        started_at: null,
        finished_at: null,
        reason_code: null,
        reason: null,
        result: null,
        log_size: 0,
        subject: t.subject === undefined ? null : json(t.subject),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    ids.push(row.id);
  }
  return ids;
}

/** Queue one task outside the build pipeline (a `repomd` signing task for a publish, filed under a build of the release). */
export async function enqueueTask(
  db: Kysely<Database>,
  t: { buildId: number; role: AgentRole; kind: TaskKind; subject: Record<string, unknown>; maxAttempts: number },
  now: number,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const build = await trx
      .selectFrom('builds')
      .select(['priority', 'source_id'])
      .where('id', '=', t.buildId)
      .executeTakeFirstOrThrow();
    const [id] = await enqueueTasks(trx, {
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
    await recordEvent(trx, now, `task.${t.kind}-queued`, t.buildId, id!, {});
    return id!;
  });
}
