import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0019: a package's rpm-md entries are stored once, as gzip members, with the length of each plain
 * entry (repomd's open-size and the plain log's offsets need it); the plain copies are gone. They were three
 * quarters of the table: a row of ~5.3 KB spilled into overflow pages on SQLite, and a publish read 53 MB for
 * 10,000 packages where 12 MB now holds the same. The digest workers inflate the members (digest-worker.ts).
 * The table is copied rather than altered, so that the file's space is reused and both dialects take the same
 * steps.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  const length = dialect === 'postgres' ? 'octet_length' : 'length';
  await db.schema
    .createTable('package_metadata_next')
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('file', 'text', (c) => c.notNull())
    .addColumn('primary_size', 'bigint', (c) => c.notNull())
    .addColumn('filelists_size', 'bigint', (c) => c.notNull())
    .addColumn('other_size', 'bigint', (c) => c.notNull())
    .addColumn('primary_gz', bytes, (c) => c.notNull())
    .addColumn('filelists_gz', bytes, (c) => c.notNull())
    .addColumn('other_gz', bytes, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('package_metadata_gz_pk', ['sha256', 'file'])
    .execute();
  await sql`insert into package_metadata_next
      (sha256, file, primary_size, filelists_size, other_size, primary_gz, filelists_gz, other_gz, created_at)
    select sha256, file, ${sql.raw(length)}(primary_xml), ${sql.raw(length)}(filelists_xml),
      ${sql.raw(length)}(other_xml), primary_gz, filelists_gz, other_gz, created_at
    from package_metadata`.execute(db);
  await db.schema.dropTable('package_metadata').execute();
  await db.schema.alterTable('package_metadata_next').renameTo('package_metadata').execute();
}
