import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0012: push instead of polling. A source may carry a webhook secret (its forge signs push events
 * with it) and the build target its pushed commits are built for; a repository may follow a target and
 * release every build of it that passes the gates at once (Copr's model).
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('sources').addColumn('hook_secret', 'text').execute();
  await db.schema.alterTable('sources').addColumn('target_id', 'integer').execute();
  await db.schema.alterTable('repos').addColumn('follow_target_id', 'integer').execute();
  await db.schema
    .alterTable('repos')
    .addColumn('auto_release', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
