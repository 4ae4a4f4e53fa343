import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { parseCheckpoint } from '../src/ledger/checkpoint.js';
import { leafHash, MemoryHashes, rootHash } from '../src/ledger/merkle.js';
import { parseNote } from '../src/ledger/note.js';
import { startServer } from '../src/server/main.js';
import { gitRepo, specWith } from './support/cli.js';
import { http } from './support/server.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/**
 * A crash between a stage's commit and its ledger append leaves a stage without its statement; the next
 * stage would be refused (STATEMENT_MISSING) for ever. The server records what is missing when it starts.
 * The crash is reproduced by removing the last appended entry (and checkpoints covering it) while stopped.
 */
test('a statement lost to a crash is recorded when the server starts again', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-repair-'));
  dirs.push(dir);
  const dataDir = path.join(dir, 'data');
  const opts = { dataDir, port: 0, log: pino({ level: 'silent' }), config: { localSourceRoots: [dir] } };
  let server = await startServer(opts);
  const admin = server.adminToken!;
  await gitRepo(path.join(dir, 'git'), { 'pkg.spec': specWith('pkg', 'echo hi') });
  assert.equal(
    (
      await http(server.url, 'POST', '/api/v1/sources', {
        token: admin,
        json: { name: 'pkg', url: path.join(dir, 'git') },
      })
    ).status,
    201,
  );
  const build = await http(server.url, 'POST', '/api/v1/builds', { token: admin, json: { source: 'pkg' } });
  assert.equal(build.status, 201, build.text);
  const stages = async () =>
    (
      (await http(server.url, 'GET', `/api/v1/ledger/lookup?build=${build.json.id}`)).json.entries as {
        entry: string;
      }[]
    ).map(
      (e) =>
        JSON.parse(Buffer.from(JSON.parse(Buffer.from(e.entry, 'base64').toString()).payload, 'base64').toString())
          .predicateType as string,
    );
  assert.deepEqual(await stages(), ['https://lenix.dev/attestation/source/v1']);
  await server.close();

  const db = new Database(path.join(dataDir, 'lenix.db'));
  const last = (db.prepare('select max(idx) as m from ledger_entries').get() as { m: number }).m;
  db.prepare('delete from ledger_subjects where idx = ?').run(last);
  db.prepare('delete from ledger_entries where idx = ?').run(last);
  db.prepare('delete from ledger_checkpoints where size > ?').run(last);
  db.close();

  server = await startServer(opts);
  try {
    assert.deepEqual(await stages(), ['https://lenix.dev/attestation/source/v1'], 'the source statement is back');
    const ledger = (await http(server.url, 'GET', '/api/v1/ledger')).json;
    assert.equal(ledger.size, last + 1);
  } finally {
    await server.close();
  }
});

/**
 * After a failover the promoted database may lack the last entries a server had already read (visible on the
 * old primary before they were replicated), and the next appends take their indexes with other statements. The
 * server must notice rather than sign a checkpoint of the history it remembers.
 */
test('entries the database lost are not signed into a checkpoint; the log is read again', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-lost-'));
  dirs.push(dir);
  const server = await startServer({ dataDir: path.join(dir, 'data'), port: 0, log: pino({ level: 'silent' }) });
  try {
    const { ledger } = server.services;
    const entry = (text: string) => {
      const data = new TextEncoder().encode(text);
      return { data, leafHash: leafHash(data), kind: 'test', subjectKeys: [] };
    };
    await ledger.store.append([entry('a'), entry('b'), entry('c')], 1);
    assert.equal((await ledger.checkpoint()).size, 3);
    // The failover: entry 2 and the checkpoint over it are gone; two other statements take indexes 2 and 3.
    const db = server.store.db;
    await db.deleteFrom('ledger_checkpoints').where('size', '>=', 3).execute();
    await db.deleteFrom('ledger_entries').where('idx', '>=', 2).execute();
    await ledger.store.append([entry('x'), entry('y')], 2);
    const cp = await ledger.checkpoint();
    const leaves = await ledger.store.leafHashes(0);
    assert.equal(cp.size, 4);
    assert.deepEqual(
      Buffer.from(parseCheckpoint(parseNote(cp.note).text).root),
      Buffer.from(rootHash(new MemoryHashes(leaves), 4)),
    );
  } finally {
    await server.close();
  }
});

test('overlapping catch-ups with the database add each entry to the tree once', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-sync-'));
  dirs.push(dir);
  const server = await startServer({ dataDir: path.join(dir, 'data'), port: 0, log: pino({ level: 'silent' }) });
  try {
    const { ledger } = server.services;
    const data = (t: string) => new TextEncoder().encode(t);
    // Entries another server appended: this one learns of them in several calls at once.
    await ledger.store.append(
      ['p', 'q', 'r'].map((t) => ({ data: data(t), leafHash: leafHash(data(t)), kind: 'test', subjectKeys: [] })),
      1,
    );
    const cps = await Promise.all(Array.from({ length: 5 }, () => ledger.checkpoint()));
    const leaves = await ledger.store.leafHashes(0);
    for (const cp of cps) {
      const parsed = parseCheckpoint(parseNote(cp.note).text);
      assert.equal(parsed.size, leaves.length);
      assert.deepEqual(Buffer.from(parsed.root), Buffer.from(rootHash(new MemoryHashes(leaves), leaves.length)));
    }
  } finally {
    await server.close();
  }
});
