import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase } from '../src/store/dialect.js';

/** Wait for a condition, failing after `ms` (the worker checkpoints every 200 ms). */
async function until(cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

test('a server database copies its WAL into the database file from a worker thread, never in a commit', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-wal-'));
  const file = path.join(dir, 'lenix.db');
  try {
    const { db, checkpointer } = openDatabase({ dialect: 'sqlite', file }, { checkpointInBackground: true });
    assert.ok(checkpointer, 'a file database gets a checkpointer');
    const auto = async () => (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db)).rows;
    assert.deepEqual(await auto(), [{ wal_autocheckpoint: 0 }]);
    await sql`create table t (id integer primary key, v text)`.execute(db);
    const before = (await stat(file)).size;
    // 2,000 commits of ~1 KiB: past the 1,000 pages at which a connection would checkpoint for itself.
    for (let i = 0; i < 2000; i++) await sql`insert into t (v) values (${'x'.repeat(1024)})`.execute(db);
    await until(async () => checkpointer.checkpointed() > 0 && (await stat(file)).size > before + 1024 * 1024);
    await checkpointer.stop();
    assert.deepEqual(await auto(), [{ wal_autocheckpoint: 1000 }], 'after stop, the connection checkpoints again');
    const rows = await sql<{ n: number }>`select count(*) as n from t`.execute(db);
    assert.equal(rows.rows[0]?.n, 2000);
    await db.destroy();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('command-line processes keep SQLite checkpointing for itself', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-wal-'));
  try {
    const { db, checkpointer } = openDatabase({ dialect: 'sqlite', file: path.join(dir, 'lenix.db') });
    assert.equal(checkpointer, undefined);
    const r = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    assert.deepEqual(r.rows, [{ wal_autocheckpoint: 1000 }]);
    await db.destroy();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
