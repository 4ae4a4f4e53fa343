import type { EventRecord } from './records.js';
import { type Db, json, parseJson } from './rows.js';

/** A build's history: one row per change of a build or task, written in the transaction that made it. */
export async function recordEvent(
  trx: Db,
  at: number,
  kind: string,
  buildId: number | null,
  taskId: number | null,
  data: Record<string, unknown>,
): Promise<void> {
  await trx
    .insertInto('events')
    .values({ at, kind, build_id: buildId, task_id: taskId, data: json(data) })
    .execute();
}

export async function listEvents(db: Db, buildId: number): Promise<EventRecord[]> {
  const rows = await db.selectFrom('events').selectAll().where('build_id', '=', buildId).orderBy('id').execute();
  return rows.map((r) => ({
    id: r.id,
    at: Number(r.at),
    kind: r.kind,
    buildId: r.build_id,
    taskId: r.task_id,
    data: parseJson(r.data, {}),
  }));
}
