import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** Migration 0007: advisories (issue 6), their id counters, a repository's errata settings, and which
 * advisories a snapshot's updateinfo carries. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === 'postgres' ? 'serial' : 'integer';
  const pk = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());
  await db.schema.alterTable('repos').addColumn('errata_prefix', 'text').execute();
  await db.schema.alterTable('repos').addColumn('osv_ecosystem', 'text').execute();
  await db.schema.alterTable('snapshots').addColumn('advisories', 'text').execute(); // JSON: advisory ids
  await db.schema
    .createTable('advisories')
    .addColumn('id', id, pk)
    .addColumn('advisory_id', 'text', (c) => c.notNull().unique())
    .addColumn('repo_id', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('severity', 'text')
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('synopsis', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reboot_suggested', 'integer', (c) => c.notNull())
    .addColumn('refs', 'text', (c) => c.notNull()) // JSON: [{type, id, href, title}]
    .addColumn('packages', 'text', (c) => c.notNull()) // JSON: [{name, epoch, version, release, arch, src, filename, sha256}]
    .addColumn('upstream_id', 'text')
    .addColumn('release_id', 'integer')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('approved_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('artifacts_nevra').on('artifacts').columns(['nevra']).execute();
  await db.schema.createIndex('advisories_repo').on('advisories').columns(['repo_id', 'status']).execute();
  await db.schema
    .createTable('advisory_counters')
    .addColumn('scope', 'text', (c) => c.primaryKey()) // PREFIX-YYYY
    .addColumn('last_number', 'integer', (c) => c.notNull())
    .execute();
}
