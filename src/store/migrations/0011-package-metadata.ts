import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0011: each package's repository metadata, derived once when it is recorded (createrepo_c's
 * primary, filelists and other entries, plain and as a gzip member), so that publishing streams stored entries
 * instead of re-reading every package. Keyed by the package's digest and its file name under Packages/.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  await db.schema
    .createTable('package_metadata')
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('file', 'text', (c) => c.notNull())
    .addColumn('primary_xml', bytes, (c) => c.notNull())
    .addColumn('primary_gz', bytes, (c) => c.notNull())
    .addColumn('filelists_xml', bytes, (c) => c.notNull())
    .addColumn('filelists_gz', bytes, (c) => c.notNull())
    .addColumn('other_xml', bytes, (c) => c.notNull())
    .addColumn('other_gz', bytes, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('package_metadata_pk', ['sha256', 'file'])
    .execute();
}
