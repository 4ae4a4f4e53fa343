import type { Kysely } from 'kysely';

/** Migration 0006: a repository's identity in SBOMs (purl vendor namespace and distro qualifier). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('repos').addColumn('vendor', 'text').execute();
  await db.schema.alterTable('repos').addColumn('distro', 'text').execute();
}
