import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/** Migration 0004: the transparency ledger (issue 4): entries in order, and the checkpoints published. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  await db.schema
    .createTable('ledger_entries')
    .addColumn('idx', 'bigint', (c) => c.primaryKey())
    .addColumn('data', bytes, (c) => c.notNull())
    .addColumn('leaf_hash', bytes, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull()) // statement stage: source, build, sign, test, release
    .addColumn('subject', 'text', (c) => c.notNull()) // JSON: {buildId?, sha256s[], commit?}
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('ledger_subjects')
    .addColumn('key', 'text', (c) => c.notNull()) // sha256:<hex>, build:<id>, commit:<sha>
    .addColumn('idx', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('ledger_subjects_pk', ['key', 'idx'])
    .execute();
  await db.schema
    .createTable('ledger_checkpoints')
    .addColumn('size', 'bigint', (c) => c.primaryKey())
    .addColumn('note', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}
