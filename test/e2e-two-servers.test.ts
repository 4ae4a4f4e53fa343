import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ApiClient } from '../src/client/http.js';
import { parseCheckpoint } from '../src/ledger/checkpoint.js';
import { MemoryHashes, rootHash } from '../src/ledger/merkle.js';
import { parseNote } from '../src/ledger/note.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { gitRepo, lenix, specWith, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';

type Task = { kind: string; state: string };
type Build = { id: number; state: string; tasks: Task[] };

/**
 * Issue 16, acceptance 2: two `lenix server` processes on one PostgreSQL and one S3 bucket (Ceph radosgw), the
 * build node and tester talking to one, the signer to the other, the CLI to either. Two packages are built
 * (one asked of each server), signed, tested and published; dnf installs them from either server with every
 * signature checked; `lenix verify` passes against either, remembering one log across both; the ledger both
 * servers appended to has no gap, and every checkpoint either signed is a prefix of the same tree.
 */
describe('two servers on one PostgreSQL and one bucket', { timeout: 900_000 }, () => {
  let cluster: Cluster;
  let admin = '';
  const urls: string[] = [];
  let dir = '';
  let dbUrl = '';
  const env = (server: string) => ({
    LENIX_CONFIG: path.join(dir, 'none.json'),
    LENIX_SERVER: server,
    LENIX_TOKEN: admin,
  });
  const cli = async (server: string, ...args: string[]) => {
    const r = await lenix(args, env(server));
    assert.equal(r.code, 0, `lenix ${args.join(' ')} against ${server}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    // The node talks to the first server, the signer to the second, the tester to the first.
    cluster = await startCluster({ servers: 2 });
    ({ admin, dir, dbUrl } = cluster);
    urls.push(...cluster.servers.map((m) => m.url));
  });

  after(async () => {
    await cluster?.stop();
  });

  test('packages built through either server install from either, verify against either; one ledger', async () => {
    const [a, b] = [urls[0]!, urls[1]!];
    await cli(b, 'repo', 'create', 'both', '--arch', 'x86_64');
    for (const name of ['via-a', 'via-b']) {
      await gitRepo(path.join(dir, 'repos', name), { [`${name}.spec`]: specWith(name, 'echo build') });
      await cli(name === 'via-a' ? b : a, 'source', 'add', name, path.join(dir, 'repos', name)); // added on the other
    }
    const ids: number[] = [];
    for (const [name, server] of [
      ['via-a', a],
      ['via-b', b],
    ] as const)
      ids.push((JSON.parse(await cli(server, 'build', name, '--json')) as { id: number }).id);
    for (const id of ids) {
      await until(
        `build ${id} built, signed and tested`,
        async () => {
          const x = await new ApiClient(b, admin).json<Build>('GET', `/api/v1/builds/${id}`);
          if (x.state === 'failed') throw new Error(`build ${id} failed: ${JSON.stringify(x)}`);
          return x.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded');
        },
        300_000,
      );
    }
    // Asked of the server that is not the publisher (the first server took that role): the publisher does it.
    const released = JSON.parse(
      await cli(b, 'release', String(ids[0]), String(ids[1]), '--to', 'both', '--approve', '--wait', '--json'),
    ) as { state: string };
    assert.equal(released.state, 'published');
    // An administrator's rollback is not fenced by the publisher role: the other server takes it too.
    const { currentSnapshot } = (await (await fetch(`${b}/api/v1/repos/both`)).json()) as { currentSnapshot: number };
    await cli(b, 'repo', 'rollback', 'both', String(currentSnapshot));

    for (const [i, server] of [a, b].entries()) {
      const reposDir = path.join(dir, `client-${i}`, 'repos.d');
      await mkdir(reposDir, { recursive: true });
      await writeFile(path.join(reposDir, 'both.repo'), await (await fetch(`${server}/repos/both.repo`)).text());
      const c = new DnfClient(path.join(dir, `client-${i}`), reposDir);
      await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
      const r = await c.dnf('install via-a via-b');
      assert.equal(r.code, 0, `dnf from ${server}: ${r.out}`);
      assert.match((await c.sh('rpm --root "$ROOT" -q via-a via-b')).out, /^via-a-1\.0-1\.noarch\n.*via-b-1\.0-1/ms);
    }

    // verify: the same log through both servers (the CLI remembers the checkpoint between them).
    const logKey = (await (await fetch(`${a}/ledger/key`)).text()).trim();
    assert.equal((await (await fetch(`${b}/ledger/key`)).text()).trim(), logKey, 'one log, one key');
    for (const [name, server] of [
      ['via-a', b],
      ['via-b', a],
    ] as const) {
      const file = path.join(dir, 'verify', `${name}-1.0-1.noarch.rpm`);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(
        file,
        Buffer.from(await (await fetch(`${server}/repos/both/x86_64/Packages/${path.basename(file)}`)).arrayBuffer()),
      );
      for (const against of [a, b]) {
        const out = await cli(against, 'verify', file, '--log-key', logKey);
        for (const stage of ['source', 'build', 'sign', 'test', 'release'])
          assert.match(out, new RegExp(`^  ${stage} +entry \\d+`, 'm'), `${name} against ${against}: ${stage}`);
      }
    }

    // The ledger: indexes 0..n-1 without a gap, and every checkpoint (whichever server signed it) the root of
    // a prefix of that one sequence of leaves.
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      const entries = (await client.query('select idx, leaf_hash from ledger_entries order by idx')).rows as {
        idx: string;
        leaf_hash: Buffer;
      }[];
      assert.ok(entries.length >= 9, `${entries.length} entries: 4 stages of 2 builds and a release`);
      assert.deepEqual(
        entries.map((e) => Number(e.idx)),
        entries.map((_, i) => i),
      );
      const tree = new MemoryHashes();
      for (const e of entries) tree.append(new Uint8Array(e.leaf_hash));
      const notes = (await client.query('select size, note from ledger_checkpoints order by size')).rows as {
        size: string;
        note: string;
      }[];
      assert.ok(notes.length > 0);
      for (const n of notes) {
        const cp = parseCheckpoint(parseNote(n.note).text);
        assert.equal(cp.size, Number(n.size));
        assert.deepEqual(Buffer.from(cp.root), Buffer.from(rootHash(tree, cp.size)), `checkpoint ${cp.size}`);
      }
    } finally {
      await client.end();
    }
  });
});
