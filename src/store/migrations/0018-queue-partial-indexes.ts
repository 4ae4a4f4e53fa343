import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0018: the task indexes that only one state reads hold only that state's tasks. The lease order
 * and the queue per arch read queued tasks, the reaper leased ones; indexed by state, every lease and every
 * completion moved each task between two places in all three indexes, and on SQLite each page it touched is
 * written again at commit (docs/benchmarks.md: a cycle wrote ~30 pages). Now a lease removes the task from
 * the queued indexes and adds it to the expiry index, and a completion removes it from that.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  for (const name of ['tasks_queue', 'tasks_expiry', 'tasks_queue_arch']) await db.schema.dropIndex(name).execute();
  await sql`create index tasks_queue on tasks (role, priority desc, vstart, id) where state = 'queued'`.execute(db);
  await sql`create index tasks_expiry on tasks (lease_expires_at) where state = 'leased'`.execute(db);
  await sql`create index tasks_queue_arch on tasks (role, arch) where state = 'queued'`.execute(db);
}
