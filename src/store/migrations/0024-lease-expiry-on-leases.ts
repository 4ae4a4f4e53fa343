import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0024: a lease's expiry lives on its lease only. The task kept a copy (`lease_expires_at`, with
 * an index of leased tasks by it for the reaper), so every heartbeat rewrote the task: on PostgreSQL a new
 * version of the row with an entry in each of the task's indexes, since the expiry was indexed, and on SQLite
 * the task's pages as well as the lease's. Now a heartbeat changes one column of the lease, which no index
 * holds (on PostgreSQL an update in place, "HOT"), and the reaper reads the open leases, which a partial
 * index keeps: there are as many as tasks running.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.dropIndex('tasks_expiry').execute();
  await db.schema.alterTable('tasks').dropColumn('lease_expires_at').execute();
  await sql`create index leases_open on leases (id) where ended_at is null`.execute(db);
}
