import type { Kysely } from 'kysely';

/** Migration 0003: a build may name the repository it is meant for; its test root then includes that
 * repository's current snapshot, so dependencies on packages already released there resolve. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('builds').addColumn('target_repo', 'text').execute();
}
