import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0002: signing keys, signed artifacts, task inputs, repositories, snapshots and releases (issue 3).
 * Append-only, like every migration.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'postgres' ? 'serial' : 'integer';
  const pk = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());

  await db.schema
    .createTable('keys')
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('artifacts').addColumn('signed_by', 'text').execute();
  // Role-specific inputs of a task (the metadata a sign task must sign, for example), as JSON.
  await db.schema.alterTable('tasks').addColumn('subject', 'text').execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('repos')
    .addColumn('id', id, pk)
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('arches', 'text', (c) => c.notNull())
    .addColumn('keys', 'text', (c) => c.notNull()) // JSON: [{fingerprint, addedAt, retiredAt}]
    .addColumn('current_snapshot_id', 'integer')
    .addColumn('keep_days', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('releases')
    .addColumn('id', id, pk)
    .addColumn('repo_id', 'integer', (c) => c.notNull().references('repos.id'))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('builds', 'text', (c) => c.notNull()) // JSON array of build ids
    .addColumn('plan', 'text', (c) => c.notNull()) // JSON: the computed plan
    .addColumn('override_reason', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('approved_by', 'text')
    .addColumn('approved_at', 'bigint')
    .addColumn('snapshot_id', 'integer')
    .addColumn('finished_at', 'bigint')
    .addColumn('reason_code', 'text')
    .addColumn('reason', 'text')
    .execute();
  await db.schema.createIndex('releases_repo').on('releases').columns(['repo_id', 'id']).execute();

  await db.schema
    .createTable('snapshots')
    .addColumn('id', id, pk)
    .addColumn('repo_id', 'integer', (c) => c.notNull().references('repos.id'))
    .addColumn('release_id', 'integer')
    .addColumn('state', 'text', (c) => c.notNull()) // building | signing | ready | failed
    .addColumn('packages', 'text', (c) => c.notNull()) // JSON: [{artifactId, sha256, name, arch, nevra}]
    .addColumn('repomd', 'text') // JSON: {arch: sha256 of repomd.xml}
    .addColumn('key_fingerprint', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('published_at', 'bigint')
    .execute();
  await db.schema.createIndex('snapshots_repo').on('snapshots').columns(['repo_id', 'id']).execute();
}
