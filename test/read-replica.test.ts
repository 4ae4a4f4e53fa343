import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { ApiClient } from '../src/client/http.js';
import { leafHash } from '../src/ledger/merkle.js';
import { type RunningServer, startServer } from '../src/server/main.js';
import { freePort as deadPort, until } from './support/cli.js';
import { type PostgresPair, startPostgresPair } from './support/postgres-pair.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

type Tokens = { tokens: { name: string }[] };
type Agents = { agents: { name: string }[] };

/**
 * Issue 16: public reads from a streaming replica (`--database-read-url`) with read-your-writes. The replica's
 * replay is paused, so what a request sees tells which database answered it: an anonymous read does not see a
 * write the replica has not replayed; the writer (its `Lenix-Read-After` position) does, and so do agents,
 * health checks and every read once the replica is down. After a promote the servers go on.
 */
describe('reads from a PostgreSQL replica', { timeout: 300_000 }, () => {
  let dir: string;
  let pair: PostgresPair;
  let proxy: TcpProxy;
  let readProxy: TcpProxy;
  let server: RunningServer;
  let replicaAdmin: pg.Client;
  let admin: ApiClient;
  const replicaReads = () => {
    assert.ok(server.replica, 'the server has a replica');
    return server.replica;
  };
  /** Another administrator's client: it has written nothing, so it has no position to read after. */
  const other = () => new ApiClient(server.url, server.adminToken);
  const names = async (c: ApiClient) => (await c.json<Tokens>('GET', '/api/v1/tokens')).tokens.map((t) => t.name);
  const createToken = (c: ApiClient, name: string, scope = 'maintainer') =>
    c.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes: [scope] });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-replica-'));
    pair = await startPostgresPair('lenix');
    proxy = await startTcpProxy(pair.primaryPort);
    readProxy = await startTcpProxy(pair.replicaPort);
    server = await startServer({
      dataDir: dir,
      database: pair.url(proxy.port),
      databaseRead: pair.url(readProxy.port),
      port: 0,
      log: pino({ level: 'silent' }),
    });
    admin = new ApiClient(server.url, server.adminToken);
    replicaAdmin = new pg.Client({ connectionString: pair.url(pair.replicaPort, 'postgres') });
    await replicaAdmin.connect();
  });

  after(async () => {
    await replicaAdmin?.end().catch(() => undefined);
    await server?.close();
    await proxy?.close();
    await readProxy?.close();
    await pair?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Wait until the replica has replayed everything the primary had when this was called. */
  const replicaCaughtUp = async () => {
    const lsn = (await server.store.db.selectNoFrom((eb) => eb.fn<string>('pg_current_wal_lsn').as('l')).execute())[0]!
      .l;
    await until(
      'the replica to replay the primary',
      async () =>
        (await replicaAdmin.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])).rows[0].ok === true,
      60_000,
    );
  };

  test('reads come from the replica; a writer reads its own write from the primary', async () => {
    await replicaCaughtUp(); // the server's own start-up writes (admin token, ledger) are on the replica
    const seen = await names(other());
    await replicaAdmin.query('select pg_wal_replay_pause()');
    try {
      const res = await admin.request('POST', '/api/v1/tokens', { json: { name: 'fresh', scopes: ['maintainer'] } });
      assert.equal(res.status, 201);
      const position = res.headers.get('lenix-read-after');
      assert.match(position ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.match(
        res.headers.get('set-cookie') ?? '',
        /^lenix_read_after=[0-9A-F]+%2F[0-9A-F]+; Max-Age=300; Path=\/; HttpOnly; SameSite=Lax$/,
      );

      assert.deepEqual(await names(other()), seen, 'a client that wrote nothing: the paused replica answered');
      assert.deepEqual(await names(admin), [...seen, 'fresh'], 'the writer saw its write');
      // A browser sends the cookie back instead of the header.
      const auth = { authorization: `Bearer ${server.adminToken}` };
      const browser = await fetch(`${server.url}/api/v1/tokens`, {
        headers: { ...auth, cookie: `lenix_read_after=${encodeURIComponent(position!)}` },
      });
      assert.deepEqual(
        ((await browser.json()) as Tokens).tokens.map((t) => t.name),
        [...seen, 'fresh'],
      );
      // A malformed position is ignored (the replica answers), never an error or an injection.
      const junk = await fetch(`${server.url}/api/v1/tokens`, {
        headers: { ...auth, 'lenix-read-after': "0/0' or 1=1" },
      });
      assert.equal(junk.status, 200);
      assert.deepEqual(
        ((await junk.json()) as Tokens).tokens.map((t) => t.name),
        seen,
      );

      // Agents act on what they read: always the primary.
      const agent = new ApiClient(server.url, (await createToken(admin, 'node-1', 'agent:build')).token);
      await agent.json('POST', '/api/v1/agent/register', { name: 'node-1', role: 'build', arches: ['x86_64'] });
      const agentNames = async (c: ApiClient) =>
        (await c.json<Agents>('GET', '/api/v1/agents')).agents.map((a) => a.name);
      assert.deepEqual(await agentNames(agent), ['node-1'], 'an agent reads the primary');
      assert.deepEqual(await agentNames(new ApiClient(server.url, null)), [], 'anonymous: the replica');
      // Health and readiness check the primary.
      assert.equal((await fetch(`${server.url}/api/v1/ready`)).status, 200);
    } finally {
      await replicaAdmin.query('select pg_wal_replay_resume()');
    }
    await replicaCaughtUp();
    assert.deepEqual(await names(other()), [...seen, 'fresh', 'node-1'], 'the replica caught up');
    assert.ok(replicaReads().stats.laggedScopes > 0);
  });

  test('inside a read scope: plain SELECTs use the replica, a write pins the rest of the scope to the primary', async () => {
    const reads = replicaReads();
    const db = server.store.db;
    const held = async () => (await db.selectFrom('leaders').select('role').execute()).map((r) => r.role).sort();
    const row = (role: string) => ({ role, holder: 'probe', fencing: 1, expires_at: 0 });
    await replicaCaughtUp();
    const onReplica = await reads.run(null, held);
    await replicaAdmin.query('select pg_wal_replay_pause()');
    try {
      await db.insertInto('leaders').values(row('probe-1')).execute();
      assert.deepEqual(await held(), [...onReplica, 'probe-1'].sort(), 'outside a scope: the primary');
      assert.deepEqual(await reads.run(null, held), onReplica, 'a plain read in a scope: the paused replica');
      await reads.run(null, async () => {
        assert.deepEqual(await held(), onReplica);
        await db.insertInto('leaders').values(row('probe-2')).execute();
        assert.deepEqual(await held(), [...onReplica, 'probe-1', 'probe-2'].sort(), 'after a write: the primary');
      });
      await reads.run(null, async () => {
        const inTransaction = await db
          .transaction()
          .execute(async (tx) => (await tx.selectFrom('leaders').select('role').execute()).map((r) => r.role));
        assert.ok(inTransaction.includes('probe-2'), 'a transaction: the primary');
        const locked = await db
          .selectFrom('leaders')
          .select('role')
          .where('role', '=', 'probe-1')
          .forUpdate()
          .execute();
        assert.equal(locked.length, 1, 'SELECT … FOR UPDATE: the primary');
      });
    } finally {
      await replicaAdmin.query('select pg_wal_replay_resume()');
      await db.deleteFrom('leaders').where('holder', '=', 'probe').execute();
    }
  });

  test('a page checks its session token against the primary, not the replica', async () => {
    await replicaCaughtUp();
    await replicaAdmin.query('select pg_wal_replay_pause()');
    try {
      const { token } = await createToken(admin, 'just-made');
      const page = await fetch(`${server.url}/`, { headers: { cookie: `lenix_token=${token}` } });
      assert.match(await page.text(), /signed in as just-made/, 'a token the replica does not have yet');
    } finally {
      await replicaAdmin.query('select pg_wal_replay_resume()');
    }
  });

  test('the ledger follows the primary even when a public read drives it', async () => {
    const ledger = server.services.ledger;
    await replicaCaughtUp();
    const before = await ledger.checkpoint();
    await replicaAdmin.query('select pg_wal_replay_pause()');
    try {
      const data = new TextEncoder().encode('{"replica":"probe"}');
      await ledger.store.append([{ data, leafHash: leafHash(data), kind: 'test', subjectKeys: [] }], Date.now());
      // A GET of the checkpoint runs in a read scope; the replica has not replayed the entry.
      const cp = await replicaReads().run(null, () => ledger.checkpoint());
      assert.equal(cp.size, before.size + 1, 'signed over the primary, not taken back to the replica');
      const res = await fetch(`${server.url}/ledger/checkpoint`);
      assert.match(await res.text(), new RegExp(`^${ledger.origin}\\n${before.size + 1}\\n`));
    } finally {
      await replicaAdmin.query('select pg_wal_replay_resume()');
    }
  });

  test('after a promote, the servers reconnect and reads and writes go on', async () => {
    await pair.failover();
    proxy.retarget(pair.replicaPort);
    // The first statements after the cut may fail (the pool's connections were cut); the client tries again.
    await until('a write on the promoted database', async () => createToken(admin, 'after-failover').catch(() => null));
    assert.ok((await names(other())).includes('after-failover'));
    assert.ok((await names(admin)).includes('after-failover'));
  });

  test('with the read database unreachable, reads go to the primary', async () => {
    readProxy.retarget(await deadPort());
    await createToken(admin, 'while-replica-down');
    assert.ok((await names(other())).includes('while-replica-down'));
    assert.ok((await names(admin)).includes('while-replica-down'));
    assert.ok(replicaReads().stats.replicaFailures > 0);
  });
});
