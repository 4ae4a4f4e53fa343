import type { Kysely } from 'kysely';

/**
 * Migration 0008: the binary packages (name and EVR) a build's spec declares, subpackages included, read at
 * build creation, so that the server refuses uploaded packages the build does not make. Null for older builds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('builds').addColumn('declared_packages', 'text').execute();
}
