import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0013: more than one server. A snapshot records the digest of every metadata file it publishes
 * (`files`, JSON: path → sha256) when they are kept in a shared blob store, so any server serves any
 * snapshot; `leaders` holds the single-writer roles (publisher, lease reaper, blob collector) as leases
 * with a fencing number that grows with every change of holder.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('snapshots').addColumn('files', 'text').execute();
  await db.schema
    .createTable('leaders')
    .addColumn('role', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('fencing', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
}
