import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase } from '../src/store/dialect.js';
import { inTransaction, withStatements } from '../src/store/statements.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

/**
 * The hot path's statements on PostgreSQL are prepared once per connection (src/store/pg-prepared.ts): checked
 * on the server itself (`pg_prepared_statements`), and through a schema change under a prepared `select *`.
 */
let pg15: TestPostgres;
let url: string;
before(async () => {
  pg15 = await startPostgres();
  url = await pg15.newDatabase('prepared');
});
after(async () => {
  await pg15?.stop();
});

test('hot-path statements are prepared once per connection; other queries are not', async () => {
  // One connection, so the prepared statements seen below are the ones the statements used.
  const { db } = openDatabase({ dialect: 'postgres', url, poolSize: 1 });
  try {
    await sql`create table jobs (id integer primary key, state text not null)`.execute(db);
    await sql`insert into jobs values (1, 'queued'), (2, 'done')`.execute(db);
    const stateOf = (id: number) =>
      inTransaction(db, (q) => q.rows(sql<{ state: string }>`select state from jobs where id = ${id}`));
    assert.deepEqual(await stateOf(1), [{ state: 'queued' }]);
    assert.deepEqual(await stateOf(2), [{ state: 'done' }]);
    const changed = await withStatements(db, (q) => q.run(sql`update jobs set state = ${'done'} where id = ${1}`));
    assert.equal(changed, 1);
    assert.deepEqual(await stateOf(1), [{ state: 'done' }]);

    await sql`select ${'not marked'}::text as plain`.execute(db);
    const { rows } = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db);
    const texts = rows.map((r) => r.statement).sort();
    assert.deepEqual(texts, ['select state from jobs where id = $1', 'update jobs set state = $1 where id = $2']);
  } finally {
    await db.destroy();
  }
});

test('a prepared statement whose result no longer fits the schema fails once, then is prepared again', async () => {
  const { db } = openDatabase({ dialect: 'postgres', url, poolSize: 1 });
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    await sql`create table boxes (id integer primary key, label text not null)`.execute(db);
    await sql`insert into boxes values (1, 'a')`.execute(db);
    const box = () =>
      withStatements(db, (q) => q.rows(sql<Record<string, unknown>>`select * from boxes where id = ${1}`));
    assert.deepEqual(await box(), [{ id: 1, label: 'a' }]);
    // Another server's migration adds a column: `*` now means another row type.
    await other.query(`alter table boxes add column size integer not null default 3`);
    await assert.rejects(box(), (err: { code?: string }) => err.code === '0A000');
    assert.deepEqual(await box(), [{ id: 1, label: 'a', size: 3 }]);
    assert.deepEqual(await box(), [{ id: 1, label: 'a', size: 3 }]);
  } finally {
    await other.end();
    await db.destroy();
  }
});
