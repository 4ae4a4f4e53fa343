import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0020: fewer index pages written by each lease and completion. On SQLite a commit writes every page
 * the transaction changed to the WAL, two writes a page; under load a commit group of ~10 scheduler cycles wrote
 * ~75 pages (docs/benchmarks.md). Leases follow the queue order, but fair share interleaves the sources,
 * so an index whose order is not the queue's takes each task from a different page:
 *
 * - `tasks_queue_arch` (role, arch) held queued tasks by id: a lease removed one entry from each source's stretch.
 *   The queue order now carries the arch (`tasks_queue`), which also answers the count per arch and lets a
 *   lease skip other arches' tasks without reading their rows.
 * - `tasks_vclock` (role, state, vstart) moved each task twice a cycle (queued → leased → finished). Now the queued
 *   tasks' virtual starts are their own partial index, left once per task, and the role's largest virtual start
 *   an index that never moves (it took a scan of the role's tasks in every state before).
 * - `leases_task` (task_id) took an entry at each source's stretch for every lease; the one reader (cancelling a
 *   build) finds the open lease through the task's own `lease_id`.
 *
 * `builds_state` (state, id) stays, though it moves each build twice: lists of builds by state read it, with the
 * state as a bound parameter, which no partial index can serve.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  for (const name of ['tasks_queue', 'tasks_queue_arch', 'tasks_vclock', 'leases_task'])
    await db.schema.dropIndex(name).execute();
  await sql`create index tasks_queue on tasks (role, priority desc, vstart, id, arch) where state = 'queued'`.execute(
    db,
  );
  await sql`create index tasks_vqueue on tasks (role, vstart) where state = 'queued'`.execute(db);
  await sql`create index tasks_vstart on tasks (role, vstart)`.execute(db);
}
