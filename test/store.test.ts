import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ManualClock } from '../src/core/clock.js';
import { LenixError, type ErrorCode } from '../src/core/errors.js';
import { openDatabase, type DatabaseConfig } from '../src/store/dialect.js';
import { migrateToLatest } from '../src/store/migrate.js';
import type { AgentRecord } from '../src/store/records.js';
import { Store } from '../src/store/store.js';
import { LedgerStore } from '../src/store/ledger-store.js';
import { ErrataStore } from '../src/store/errata-store.js';
import { ReleaseStore } from '../src/store/release-store.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

/** A build task's result as the store keeps it (core/protocol.ts BuildTaskResult). */
const BUILDROOT = {
  buildroot: {
    hostOs: 'test',
    kernel: '6.1',
    arch: 'x86_64',
    tools: {},
    packageManager: 'none' as const,
    packages: [],
    sandbox: 'bwrap',
  },
};

/**
 * The storage conformance suite: one set of behaviours, run against every dialect (style.md §3).
 * PostgreSQL is a throwaway server started from Debian's binaries for this file.
 */
type Factory = { name: string; open(label: string): Promise<DatabaseConfig>; teardown(): Promise<void> };

let pg: TestPostgres | null = null;
let tmp = '';
const factories: Factory[] = [
  {
    name: 'sqlite',
    async open(label) {
      if (!tmp) tmp = await mkdtemp(path.join(os.tmpdir(), 'lenix-store-'));
      return { dialect: 'sqlite', file: path.join(tmp, `${label}.db`) };
    },
    async teardown() {
      if (tmp) await rm(tmp, { recursive: true, force: true });
    },
  },
  {
    name: 'postgres',
    async open(label) {
      pg ??= await startPostgres();
      return { dialect: 'postgres', url: await pg.newDatabase(label), poolSize: 20 };
    },
    async teardown() {
      await pg?.stop();
    },
  },
];

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LenixError, `expected LenixError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

for (const f of factories) {
  describe(`store conformance: ${f.name}`, () => {
    let counter = 0;
    const stores: Store[] = [];
    const fresh = async () => {
      const cfg = await f.open(`t${process.pid}_${++counter}`);
      const { db, dialect } = openDatabase(cfg);
      await migrateToLatest(db, dialect);
      const store = new Store(db, dialect);
      stores.push(store);
      return store;
    };
    const clock = new ManualClock();

    async function seed(store: Store, name = 'hello', tasks = 1) {
      const source = await store.sources.add({ name, url: '/srv/git/x', branch: 'main', watch: false }, clock.now());
      const commit = await store.sources.recordCommit(
        source.id,
        { sha: 'a'.repeat(40), tree: 'b'.repeat(40), committedAt: 1_700_000_000, subject: 'init' },
        clock.now(),
      );
      const builds = [];
      for (let i = 0; i < tasks; i++) {
        builds.push(
          await store.builds.create(
            {
              sourceId: source.id,
              commitId: commit.id,
              ref: 'main',
              priority: 0,
              arches: ['x86_64'],
              specPath: `${name}.spec`,
              packageName: name,
              packageEvr: '1-1',
              createdBy: 'test',
              maxAttempts: 2,
            },
            clock.now(),
          ),
        );
      }
      return { source, commit, builds };
    }

    async function agent(store: Store, name = 'n1', arches = ['x86_64', 'noarch', 'src']): Promise<AgentRecord> {
      const tokenId = await store.tokens.create(name, `hash-${name}-${Math.random()}`, ['agent:build'], clock.now());
      return store.agents.register({ name, role: 'build', arches, capabilities: {}, tokenId }, clock.now());
    }

    after(async () => {
      for (const s of stores) await s.close();
      await f.teardown();
    });

    test('migrations are idempotent', async () => {
      const store = await fresh();
      assert.deepEqual(await migrateToLatest(store.db, store.dialect), []);
    });

    test('a source name is unique; commits are recorded once', async () => {
      const store = await fresh();
      const { source, commit } = await seed(store);
      await rejectsWith(
        store.sources.add({ name: 'hello', url: '/x', branch: 'main', watch: false }, clock.now()),
        'SOURCE_EXISTS',
      );
      const again = await store.sources.recordCommit(
        source.id,
        { sha: 'a'.repeat(40), tree: 'b'.repeat(40), committedAt: 1, subject: 'x' },
        clock.now(),
      );
      assert.equal(again.id, commit.id);
      assert.equal((await store.sources.listCommits(source.id, 10)).length, 1);
    });

    test('a new build has one queued SRPM task', async () => {
      const store = await fresh();
      const { builds } = await seed(store);
      const { build, srpmTask } = builds[0]!;
      assert.equal(build.state, 'queued');
      assert.equal(srpmTask.kind, 'srpm');
      assert.equal(srpmTask.arch, 'src');
      assert.equal(srpmTask.state, 'queued');
      assert.deepEqual(
        (await store.tasks.listOfBuild(build.id)).map((t) => t.id),
        [srpmTask.id],
      );
    });

    test('a lease hands out a task once, with a fencing token and an expiry', async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store);
      const grant = await store.tasks.lease(a, 30_000, clock.now());
      assert.ok(grant);
      assert.equal(grant.task.state, 'leased');
      assert.equal(grant.lease.fencingToken, 1);
      assert.equal(grant.lease.expiresAt, clock.now() + 30_000);
      assert.equal(grant.task.attempts, 1);
      assert.equal(await store.tasks.lease(a, 30_000, clock.now()), null);
      assert.equal((await store.builds.get(grant.task.buildId))!.state, 'running');
    });

    test('an agent only gets tasks of its architectures', async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store, 'arm', ['aarch64']);
      assert.equal(await store.tasks.lease(a, 30_000, clock.now()), null);
    });

    test('completion with a fan-out queues binary tasks in the same transaction', async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store);
      const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
      const r = await store.tasks.complete(
        g.lease.id,
        1,
        a.tokenId,
        { kind: 'success' },
        BUILDROOT,
        { kind: 'fan-out', role: 'build', taskKind: 'binary', arches: ['x86_64', 'aarch64'] },
        clock.now(),
      );
      assert.equal(r.task.state, 'succeeded');
      assert.equal(r.queuedNew, 2);
      const tasks = await store.tasks.listOfBuild(g.task.buildId);
      assert.deepEqual(
        tasks.map((t) => [t.kind, t.arch, t.state]),
        [
          ['srpm', 'src', 'succeeded'],
          ['binary', 'x86_64', 'queued'],
          ['binary', 'aarch64', 'queued'],
        ],
      );
      assert.deepEqual(tasks[0]!.result, BUILDROOT);
    });

    test('a completed lease cannot complete again', async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store);
      const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
      await store.tasks.complete(g.lease.id, 1, a.tokenId, { kind: 'success' }, null, { kind: 'none' }, clock.now());
      await rejectsWith(
        store.tasks.complete(
          g.lease.id,
          1,
          a.tokenId,
          { kind: 'failure', code: 'BUILD_FAILED', reason: 'late' },
          null,
          { kind: 'none' },
          clock.now(),
        ),
        'LEASE_ENDED',
      );
      assert.equal((await store.tasks.get(g.task.id))!.state, 'succeeded');
    });

    test('an expired lease goes back to the queue and the old fencing token is refused', async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store, 'a');
      const b = await agent(store, 'b');
      const first = (await store.tasks.lease(a, 1000, clock.now()))!;
      clock.advance(1001);
      const requeued = await store.tasks.reapExpired(clock.now());
      assert.deepEqual(
        requeued.map((t) => t.state),
        ['queued'],
      );
      const second = (await store.tasks.lease(b, 1000, clock.now()))!;
      assert.equal(second.task.id, first.task.id);
      assert.equal(second.lease.fencingToken, 2);
      assert.equal(second.task.attempts, 2);
      await rejectsWith(
        store.tasks.complete(first.lease.id, 1, a.tokenId, { kind: 'success' }, null, { kind: 'none' }, clock.now()),
        'STALE_FENCING_TOKEN',
      );
      await rejectsWith(store.tasks.heartbeat(first.lease.id, 1, a.tokenId, 1000, clock.now()), 'STALE_FENCING_TOKEN');
      await rejectsWith(
        store.logs
          .append(first.task.id, 0, Buffer.from('x'))
          .then(() => store.tasks.checkLease(first.lease.id, 1, a.tokenId, clock.now())),
        'STALE_FENCING_TOKEN',
      );
      const t = (await store.tasks.get(first.task.id))!;
      assert.equal(t.state, 'leased');
      assert.equal(t.leaseId, second.lease.id);
    });

    test('a lease is refused to another agent token', async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store, 'a');
      const b = await agent(store, 'b');
      const g = (await store.tasks.lease(a, 1000, clock.now()))!;
      await rejectsWith(store.tasks.checkLease(g.lease.id, 1, b.tokenId, clock.now()), 'FORBIDDEN');
    });

    test('attempts are counted; the last lost attempt fails the task with its reason kept', async () => {
      const store = await fresh();
      const { builds } = await seed(store);
      const a = await agent(store);
      for (let i = 0; i < 2; i++) {
        assert.ok(await store.tasks.lease(a, 1000, clock.now()));
        clock.advance(1001);
        await store.tasks.reapExpired(clock.now());
      }
      const t = (await store.tasks.get(builds[0]!.srpmTask.id))!;
      assert.equal(t.state, 'failed');
      assert.equal(t.reasonCode, 'LEASE_EXPIRED');
      assert.match(t.reason!, /gave up after 2 attempts/);
      const b = (await store.builds.get(t.buildId))!;
      assert.equal(b.state, 'failed');
      assert.equal(b.reasonCode, 'LEASE_EXPIRED');
    });

    test('an agent error retries; a build failure does not', async () => {
      const store = await fresh();
      await seed(store, 'one');
      const a = await agent(store);
      let g = (await store.tasks.lease(a, 1000, clock.now()))!;
      await store.tasks.complete(
        g.lease.id,
        1,
        a.tokenId,
        { kind: 'error', code: 'AGENT_ERROR', reason: 'disk full' },
        null,
        { kind: 'none' },
        clock.now(),
      );
      assert.equal((await store.tasks.get(g.task.id))!.state, 'queued');
      g = (await store.tasks.lease(a, 1000, clock.now()))!;
      await store.tasks.complete(
        g.lease.id,
        2,
        a.tokenId,
        { kind: 'failure', code: 'BUILD_FAILED', reason: 'rpmbuild exited with status 1' },
        null,
        { kind: 'none' },
        clock.now(),
      );
      const t = (await store.tasks.get(g.task.id))!;
      assert.equal(t.state, 'failed');
      assert.equal(t.reason, 'rpmbuild exited with status 1');
    });

    test("fair share: one queued task of a second source is served before the first source's backlog", async () => {
      const store = await fresh();
      const busy = await seed(store, 'busy', 500);
      const quiet = await seed(store, 'quiet', 1);
      const a = await agent(store);
      const served: number[] = [];
      for (let i = 0; i < 3; i++) served.push((await store.tasks.lease(a, 30_000, clock.now()))!.task.sourceId);
      assert.ok(served.includes(quiet.source.id), `quiet source not served in the first 3 leases: ${served.join(',')}`);
      assert.equal(served[0], busy.source.id);
    });

    test('priority comes before fair share', async () => {
      const store = await fresh();
      await seed(store, 'low', 3);
      const src = await store.sources.add({ name: 'urgent', url: '/x', branch: 'main', watch: false }, clock.now());
      const c = await store.sources.recordCommit(
        src.id,
        { sha: 'c'.repeat(40), tree: 'd'.repeat(40), committedAt: 1, subject: 's' },
        clock.now(),
      );
      await store.builds.create(
        {
          sourceId: src.id,
          commitId: c.id,
          ref: 'main',
          priority: 10,
          arches: ['x86_64'],
          specPath: 'u.spec',
          packageName: 'u',
          packageEvr: '1-1',
          createdBy: 't',
          maxAttempts: 2,
        },
        clock.now(),
      );
      const a = await agent(store);
      assert.equal((await store.tasks.lease(a, 30_000, clock.now()))!.task.sourceId, src.id);
    });

    test('concurrent leases never hand one task to two agents', async () => {
      const store = await fresh();
      await seed(store, 'many', 10);
      const agents = await Promise.all(Array.from({ length: 20 }, (_, i) => agent(store, `c${i}`)));
      const grants = (await Promise.all(agents.map((a) => store.tasks.lease(a, 30_000, clock.now())))).filter(
        (g) => g !== null,
      );
      const ids = grants.map((g) => g!.task.id);
      assert.equal(new Set(ids).size, ids.length);
      assert.equal(ids.length, 10);
    });

    test('logs append by offset: duplicates are skipped, gaps refused, reads start anywhere', async () => {
      const store = await fresh();
      const { builds } = await seed(store);
      const id = builds[0]!.srpmTask.id;
      assert.equal(await store.logs.append(id, 0, Buffer.from('hello ')), 6);
      assert.equal(await store.logs.append(id, 0, Buffer.from('hello ')), 6);
      assert.equal(await store.logs.append(id, 3, Buffer.from('lo world\n')), 12);
      await rejectsWith(store.logs.append(id, 20, Buffer.from('x')), 'LOG_OFFSET_GAP');
      assert.equal((await store.logs.read(id, 0)).toString(), 'hello world\n');
      assert.equal((await store.logs.read(id, 8)).toString(), 'rld\n');
      assert.equal((await store.tasks.get(id))!.logSize, 12);
    });

    test("artifacts are recorded only under the current lease; the build shows the final lease's files", async () => {
      const store = await fresh();
      await seed(store);
      const a = await agent(store);
      const first = (await store.tasks.lease(a, 1000, clock.now()))!;
      const art = {
        buildId: first.task.buildId,
        taskId: first.task.id,
        sha256: 'e'.repeat(64),
        size: 3,
        name: 'x.src.rpm',
        kind: 'srpm' as const,
        arch: 'src',
        nevra: 'x-1-1.src',
        parentId: null,
      };
      await store.artifacts.add({ ...art, leaseId: first.lease.id }, 1, clock.now());
      clock.advance(1001);
      await store.tasks.reapExpired(clock.now());
      await rejectsWith(
        store.artifacts.add({ ...art, leaseId: first.lease.id }, 1, clock.now()),
        'STALE_FENCING_TOKEN',
      );
      assert.deepEqual(await store.artifacts.listOfBuild(first.task.buildId), []);
      const second = (await store.tasks.lease(a, 1000, clock.now()))!;
      await store.artifacts.add({ ...art, leaseId: second.lease.id, sha256: 'f'.repeat(64) }, 2, clock.now());
      const listed = await store.artifacts.listOfBuild(first.task.buildId);
      assert.deepEqual(
        listed.map((x) => x.sha256),
        ['f'.repeat(64)],
      );
      assert.equal((await store.artifacts.findBySha('f'.repeat(64)))!.name, 'x.src.rpm');
    });

    test('cancelling a build ends its tasks and tells the leaseholder', async () => {
      const store = await fresh();
      const { builds } = await seed(store);
      const a = await agent(store);
      const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
      const b = await store.builds.cancel(builds[0]!.build.id, 'test', clock.now());
      assert.equal(b.state, 'cancelled');
      assert.deepEqual(await store.tasks.heartbeat(g.lease.id, 1, a.tokenId, 30_000, clock.now()), {
        expiresAt: g.lease.expiresAt,
        cancelled: true,
        agentId: a.id,
      });
      await rejectsWith(store.builds.cancel(b.id, 'again', clock.now()), 'BUILD_FINISHED');
      await rejectsWith(
        store.tasks.complete(g.lease.id, 1, a.tokenId, { kind: 'success' }, null, { kind: 'none' }, clock.now()),
        'LEASE_ENDED',
      );
      assert.ok((await store.builds.listEvents(b.id)).some((e) => e.kind === 'build.cancelled'));
    });

    test('tokens are found by hash and can be revoked', async () => {
      const store = await fresh();
      const id = await store.tokens.create('ci', 'h1', ['maintainer'], clock.now());
      assert.deepEqual((await store.tokens.findByHash('h1'))!.scopes, ['maintainer']);
      assert.equal(await store.tokens.revoke(id, clock.now()), true);
      assert.notEqual((await store.tokens.findByHash('h1'))!.revokedAt, null);
      assert.equal(await store.tokens.findByHash('nope'), null);
    });

    test('the ledger appends in order, never reuses an index, and finds entries by subject', async () => {
      const store = await fresh();
      const ledger = new LedgerStore(store.db, store.dialect);
      const e = (s: string, keys: string[]) => ({
        data: Buffer.from(s),
        leafHash: Buffer.alloc(32, s.length),
        kind: 'test',
        subjectKeys: keys,
      });
      assert.equal(await ledger.size(), 0);
      assert.equal(
        await ledger.append([e('a', ['build:1']), e('bb', ['build:1', 'sha256:x', 'sha256:x'])], clock.now()),
        0,
      );
      const [p, q] = await Promise.all([
        ledger.append([e('c', ['build:2'])], clock.now()),
        ledger.append([e('d', ['build:2'])], clock.now()),
      ]);
      assert.deepEqual([p, q].sort(), [2, 3]);
      assert.equal(await ledger.size(), 4);
      assert.deepEqual(await ledger.lookup('build:1'), [0, 1]);
      assert.deepEqual(await ledger.lookup('sha256:x'), [1]);
      assert.deepEqual(
        (await ledger.entries(0, 2)).map((x) => Buffer.from(x.data).toString()),
        ['a', 'bb'],
      );
      assert.equal((await ledger.leafHashes(1)).length, 3);
      await ledger.saveCheckpoint(4, 'note', clock.now());
      await ledger.saveCheckpoint(4, 'note again', clock.now());
      assert.deepEqual(await ledger.latestCheckpoint(), { size: 4, note: 'note' });
    });

    test('advisory ids are allocated once per prefix and year, even concurrently; a duplicate id is refused', async () => {
      const store = await fresh();
      const releases = new ReleaseStore(store.db);
      const errata = new ErrataStore(store.db, store.dialect);
      const repo = await releases.createRepo({ name: 'r', arches: ['x86_64'], keys: [], keepDays: 1 }, clock.now());
      const draft = (type: 'security' | 'bugfix', id?: string) => ({
        prefix: 'LX',
        year: 2026,
        repoId: repo.id,
        type,
        severity: null,
        title: 't',
        synopsis: '',
        description: '',
        rebootSuggested: false,
        references: [],
        packages: [],
        upstreamId: null,
        createdBy: 'test',
        ...(id ? { id } : {}),
      });
      const made = await Promise.all(
        Array.from({ length: 8 }, (_, i) => errata.create(draft(i % 2 ? 'security' : 'bugfix'), clock.now())),
      );
      const numbers = made.map((a) => Number(a.id.slice(-4))).sort((a, b) => a - b);
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6, 7, 8]);
      await rejectsWith(errata.create(draft('bugfix', made[0]!.id), clock.now()), 'ERRATA_EXISTS');
      assert.equal((await errata.list({ repoId: repo.id })).length, 8);
      const one = made[0]!.id;
      assert.equal(await errata.setStatus(one, 'draft', 'approved', { approvedBy: 'm' }, clock.now()), true);
      assert.equal(
        await errata.setStatus(one, 'draft', 'approved', { approvedBy: 'm' }, clock.now()),
        false,
        'conditional on the old status',
      );
      assert.equal(await errata.update(one, 'draft', { title: 'x' }, clock.now(), false), false);
      assert.equal(await errata.update(one, 'approved', { title: 'x' }, clock.now(), true), true);
      const got = (await errata.get(one))!;
      assert.deepEqual([got.status, got.title, got.version, got.repo, got.approvedBy], ['approved', 'x', 2, 'r', 'm']);
    });

    test('the ledger keeps its witness list', async () => {
      const store = await fresh();
      const ledger = new LedgerStore(store.db, store.dialect);
      await ledger.addWitness('http://w2.example', clock.now());
      await ledger.addWitness('http://w1.example', clock.now());
      await ledger.addWitness('http://w1.example', clock.now());
      assert.deepEqual(await ledger.witnesses(), ['http://w1.example', 'http://w2.example']);
      assert.equal(await ledger.removeWitness('http://w2.example'), true);
      assert.equal(await ledger.removeWitness('http://w2.example'), false);
      assert.deepEqual(await ledger.witnesses(), ['http://w1.example']);
    });

    test('agents keep their id when they register again with the same token', async () => {
      const store = await fresh();
      const a = await agent(store, 'same');
      const again = await store.agents.register(
        { name: 'same', role: 'build', arches: ['aarch64'], capabilities: {}, tokenId: a.tokenId },
        clock.now(),
      );
      assert.equal(again.id, a.id);
      assert.deepEqual(again.arches, ['aarch64']);
      const other = await store.tokens.create('other', 'hash-other', ['agent:build'], clock.now());
      await rejectsWith(
        store.agents.register(
          { name: 'same', role: 'build', arches: [], capabilities: {}, tokenId: other },
          clock.now(),
        ),
        'FORBIDDEN',
      );
    });
  });
}
