import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseCheckpoint } from '../src/ledger/checkpoint.js';
import { MemoryHashes, rootHash } from '../src/ledger/merkle.js';
import { parseNote } from '../src/ledger/note.js';
import { gitRepo, specWith, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { type PostgresPair, startPostgresPair } from './support/postgres-pair.js';
import { type System, startSystem } from './support/system.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

type Task = { kind: string; state: string };
type Build = { id: number; state: string; tasks: Task[] };

/**
 * Issue 16, acceptance 4: a database failover in the middle of work. Lenix runs on a PostgreSQL primary with a
 * synchronous streaming replica (which also answers public reads), the primary reached through one address (a
 * TCP forwarder standing for a virtual IP). While builds are in flight the primary is killed and the replica promoted; the address moves to it. The server and
 * agents reconnect and carry on: every build acknowledged before the failover finishes, is released and
 * installs with dnf; the ledger has no gap and every checkpoint is a prefix of one tree.
 */
describe('database failover mid-run', { timeout: 900_000 }, () => {
  let dir: string;
  let pair: PostgresPair;
  let proxy: TcpProxy;
  let sys: System;
  const names = ['fo-one', 'fo-two', 'fo-three', 'fo-four'];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-failover-'));
    pair = await startPostgresPair('lenix');
    proxy = await startTcpProxy(pair.primaryPort);
    sys = await startSystem(dir, {
      // Public reads from the replica until it is promoted, then from it as the primary.
      serverArgs: [
        '--database',
        pair.url(proxy.port),
        '--database-read-url',
        pair.url(pair.replicaPort),
        '--lease-seconds',
        '10',
      ],
    });
  });

  after(async () => {
    // What each process said, for when this fails (test-output/ is kept by CI).
    const out = process.env['LENIX_TEST_OUTPUT'];
    if (out && sys)
      for (const [name, text] of Object.entries(sys.output()))
        await writeFile(path.join(out, `failover-${name}.log`), text).catch(() => undefined);
    await sys?.stop();
    await proxy?.close();
    await pair?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the replica is promoted while builds run: every acknowledged build finishes, publishes and installs', async () => {
    await sys.cli('repo', 'create', 'fo', '--arch', 'x86_64');
    for (const n of names) {
      await gitRepo(path.join(dir, 'repos', n), { [`${n}.spec`]: specWith(n, 'sleep 1; echo build') });
      await sys.cli('source', 'add', n, path.join(dir, 'repos', n));
    }
    const ids: number[] = [];
    for (const n of names) ids.push((JSON.parse((await sys.cli('build', n, '--json')).stdout) as { id: number }).id);
    const get = (id: number) => sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
    // Mid-run: the first build signed, the others not all done. (This client did not create the builds: it reads
    // the replica, which may not have replayed a build a moment after the CLI created it.)
    await until('the first build to be signed', async () =>
      (await get(ids[0]!).catch(() => null))?.tasks.some((t) => t.kind === 'sign' && t.state === 'succeeded'),
    );
    const before = await Promise.all(ids.map(get));
    assert.ok(
      before.some((b) => !b.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded')),
      'work still in flight at the failover',
    );
    await pair.failover();
    proxy.retarget(pair.replicaPort);

    for (const id of ids) {
      const b = await until(
        `build ${id} to finish after the failover`,
        async () => {
          const x = await get(id).catch(() => null); // the server may answer 500 while it reconnects
          if (x?.state === 'failed') throw new Error(`build ${id} failed: ${JSON.stringify(x)}`);
          return x?.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded') ? x : null;
        },
        300_000,
      );
      assert.equal(b.state, 'succeeded');
    }
    const released = JSON.parse(
      (await sys.cli('release', ...ids.map(String), '--to', 'fo', '--approve', '--wait', '--json')).stdout,
    ) as { state: string };
    assert.equal(released.state, 'published');

    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'fo.repo'), await (await fetch(`${sys.url}/repos/fo.repo`)).text());
    const c = new DnfClient(path.join(dir, 'client'), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const r = await c.dnf(`install ${names.join(' ')}`);
    assert.equal(r.code, 0, r.out);

    // The promoted database holds one gapless log, and every checkpoint is a prefix of it.
    const client = new pg.Client({ connectionString: pair.url(pair.replicaPort) });
    await client.connect();
    try {
      const entries = (await client.query('select idx, leaf_hash from ledger_entries order by idx')).rows as {
        idx: string;
        leaf_hash: Buffer;
      }[];
      assert.deepEqual(
        entries.map((e) => Number(e.idx)),
        entries.map((_, i) => i),
      );
      const stages = (await client.query('select kind, count(*) as n from ledger_entries group by kind')).rows as {
        kind: string;
        n: string;
      }[];
      for (const stage of ['source', 'build', 'sign', 'test'])
        assert.ok(Number(stages.find((s) => s.kind === stage)?.n ?? 0) >= ids.length, `${stage} statements`);
      const tree = new MemoryHashes();
      for (const e of entries) tree.append(new Uint8Array(e.leaf_hash));
      for (const n of (await client.query('select note from ledger_checkpoints')).rows as { note: string }[]) {
        const cp = parseCheckpoint(parseNote(n.note).text);
        assert.deepEqual(Buffer.from(cp.root), Buffer.from(rootHash(tree, cp.size)), `checkpoint ${cp.size}`);
      }
    } finally {
      await client.end();
    }
  });
});
