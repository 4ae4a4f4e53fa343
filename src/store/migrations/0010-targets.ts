import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0010: build targets (what a build is built against and for: its build repository, the repositories
 * its buildroots also draw from, its arches and rpm macros, the repository its releases go to), and the target
 * each build names (null: the host toolchain, as before); batches of builds in dependency order (chain builds)
 * and the batch a build belongs to; imported packages (upstream or bootstrap RPMs with their signature check).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'postgres' ? 'serial' : 'integer';
  const pk = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());
  await db.schema
    .createTable('targets')
    .addColumn('id', id, pk)
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('build_repo', 'text', (c) => c.notNull())
    .addColumn('from_repos', 'text', (c) => c.notNull())
    .addColumn('external_repos', 'text', (c) => c.notNull()) // JSON: [{url, key}]
    .addColumn('arches', 'text', (c) => c.notNull())
    .addColumn('macros', 'text', (c) => c.notNull())
    .addColumn('release_to', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.alterTable('builds').addColumn('target_id', 'integer').execute();
  await db.schema
    .createTable('batches')
    .addColumn('id', id, pk)
    .addColumn('target_id', 'integer', (c) => c.notNull())
    .addColumn('groups', 'text', (c) => c.notNull()) // JSON: source names per group, in order
    .addColumn('builds', 'text', (c) => c.notNull()) // JSON: build ids per started group
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.alterTable('builds').addColumn('batch_id', 'integer').execute();
  await db.schema
    .createTable('imports')
    .addColumn('id', id, pk)
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('nevra', 'text', (c) => c.notNull())
    .addColumn('arch', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull()) // rpm | srpm
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('key_fingerprint', 'text') // the key its signature was checked against; null: unsigned
    .addColumn('repo', 'text', (c) => c.notNull())
    .addColumn('imported_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('imports_sha').on('imports').columns(['sha256']).execute();
}
