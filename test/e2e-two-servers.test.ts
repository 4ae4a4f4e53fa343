import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ApiClient } from '../src/client/http.js';
import { generateKey } from '../src/crypto/gpg.js';
import { parseCheckpoint } from '../src/ledger/checkpoint.js';
import { MemoryHashes, rootHash } from '../src/ledger/merkle.js';
import { parseNote } from '../src/ledger/note.js';
import { startRadosgw, type TestS3 } from './support/ceph.js';
import { freePort, gitRepo, lenix, Proc, specWith, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

type Task = { kind: string; state: string };
type Build = { id: number; state: string; tasks: Task[] };

/**
 * Issue 16, acceptance 2: two `lenix server` processes on one PostgreSQL and one S3 bucket (Ceph radosgw), the
 * build node talking to one, the signer and tester to the other, the CLI to either. Two packages are built
 * (one asked of each server), signed, tested and published; dnf installs them from either server with every
 * signature checked; `lenix verify` passes against either, remembering one log across both; the ledger both
 * servers appended to has no gap, and every checkpoint either signed is a prefix of the same tree.
 */
describe('two servers on one PostgreSQL and one bucket', { timeout: 900_000 }, () => {
  let dir: string;
  let s3: TestS3;
  let db: TestPostgres;
  let dbUrl: string;
  const procs: Proc[] = [];
  const urls: string[] = [];
  let admin = '';
  const keys = () => ({ LENIX_S3_ACCESS_KEY_ID: s3.accessKeyId, LENIX_S3_SECRET_ACCESS_KEY: s3.secretAccessKey });
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

  const startServer = async (name: string) => {
    const port = await freePort();
    const p = new Proc(
      [
        'server',
        '--data',
        path.join(dir, name),
        '--database',
        dbUrl,
        '--blobs',
        `s3://lenix-two?endpoint=${s3.endpoint}`,
        '--ledger-keys',
        path.join(dir, 'ledger-keys'),
        '--port',
        String(port),
        '--lease-seconds',
        '10',
        '--local-source-root',
        path.join(dir, 'repos'),
      ],
      keys(),
    );
    procs.push(p);
    urls.push((await p.waitFor(/listening on (http:\S+)/))[1]!);
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-two-'));
    [s3, db] = await Promise.all([startRadosgw(), startPostgres()]);
    dbUrl = await db.newDatabase('two');
    await startServer('a'); // first: it migrates, makes the admin token and the ledger keys
    await startServer('b');
    admin = (await readFile(path.join(dir, 'a', 'admin.token'), 'utf8')).trim();
    const api = new ApiClient(urls[0]!, admin);
    const token = async (n: string, scope: string) =>
      (await api.json<{ token: string }>('POST', '/api/v1/tokens', { name: n, scopes: [scope] })).token;
    const keysDir = path.join(dir, 'keys');
    await generateKey(keysDir, 'two-key', 'ed25519');
    const agents = [
      ['node', urls[0]!, 'agent:build', ['--work', path.join(dir, 'node-work')]],
      ['tester', urls[1]!, 'agent:test', ['--work', path.join(dir, 'tester-work')]],
      ['signer', urls[1]!, 'agent:sign', ['--keys', keysDir, '--work', path.join(dir, 'signer-work')]],
    ] as const;
    for (const [role, url, scope, extra] of agents) {
      const p = new Proc([role, '--server', url, '--token', await token(role, scope), ...extra], {
        LENIX_CONFIG: path.join(dir, 'none.json'),
      });
      procs.push(p);
      await p.waitFor(/"msg":"registered"/);
    }
    await until(
      'the signing key, seen from the other server',
      async () =>
        (await new ApiClient(urls[1]!, admin).json<{ signingKey: string | null }>('GET', '/api/v1/keys')).signingKey,
    );
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
    await s3?.stop();
    await db?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
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
