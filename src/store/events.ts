import { sql } from 'kysely';
import type { EventRecord } from './records.js';
import { type Db, json, parseJson } from './rows.js';
import type { Statements } from './statements.js';

/** A build's history: one row per change of a build or task, written in the transaction that made it. */
export async function recordEvent(
  q: Statements,
  at: number,
  kind: string,
  buildId: number | null,
  taskId: number | null,
  data: Record<string, unknown>,
): Promise<void> {
  await q.run(sql`
    insert into events (at, kind, build_id, task_id, data)
    values (${at}, ${kind}, ${buildId}, ${taskId}, ${json(data)})`);
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
