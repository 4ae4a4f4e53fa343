import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0014: the mirror network. `mirrors` is the registry (a mirror's base URL under which repositories
 * appear as NAME/ARCH/, its rsync URL, country, contact); `repo_expiries` records a repository's emergency expire:
 * no snapshot up to that one is a metalink alternate any more.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('mirrors')
    .addColumn('url', 'text', (c) => c.primaryKey())
    .addColumn('rsync_url', 'text')
    .addColumn('country', 'text')
    .addColumn('contact', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('repo_expiries')
    .addColumn('repo_id', 'integer', (c) => c.primaryKey())
    .addColumn('through_snapshot_id', 'integer', (c) => c.notNull())
    .addColumn('expired_at', 'bigint', (c) => c.notNull())
    .execute();
}
