import type { Kysely } from 'kysely';

/** Migration 0005: the witnesses (C2SP tlog-witness URLs) the ledger asks to cosign each checkpoint. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ledger_witnesses')
    .addColumn('url', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
