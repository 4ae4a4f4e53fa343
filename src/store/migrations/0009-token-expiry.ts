import type { Kysely } from 'kysely';

/** Migration 0009: tokens may expire (null: never). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('tokens').addColumn('expires_at', 'bigint').execute();
}
