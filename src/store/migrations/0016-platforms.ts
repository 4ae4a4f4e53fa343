import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** Migration 0016: a build target may name a platform (el9: EL macros, build shell, flags; issue 19). */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('targets').addColumn('platform', 'text').execute();
}
