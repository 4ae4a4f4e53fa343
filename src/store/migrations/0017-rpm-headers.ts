import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0017: the digests an rpm database keeps for each signed or imported package (issue 20), by the
 * package file's sha256: its main header's SHA-256 and SHA-1 and its payload digest. Statements name them, so an
 * installed package is matched to its ledger entries without its file.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('rpm_headers')
    .addColumn('sha256', 'text', (c) => c.primaryKey())
    .addColumn('header_sha256', 'text', (c) => c.notNull())
    .addColumn('header_sha1', 'text', (c) => c.notNull())
    .addColumn('payload_digest', 'text')
    .execute();
  await db.schema.createIndex('rpm_headers_header').on('rpm_headers').column('header_sha256').execute();
}
