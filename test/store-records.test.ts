import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrataStore } from '../src/store/errata-store.js';
import { LedgerStore } from '../src/store/ledger-store.js';
import { ReleaseStore } from '../src/store/release-store.js';
import { rejectsWith, storeSuite } from './support/store-suite.js';

/**
 * The storage conformance suite, part two: logs, artifacts, cancelling, tokens, the ledger, advisory ids,
 * witnesses and agents, against SQLite and PostgreSQL (test/support/store-suite.ts).
 */
storeSuite('store conformance (records)', ({ fresh, clock, seed, agent }) => {
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

  test('header digests are kept by package file, first put wins, and read back in chunks', async () => {
    const store = await fresh();
    const d = (n: number) => ({ sha256: n.toString(16).padStart(64, '0'), sha1: 'f'.repeat(40), payload: null });
    const rows = Array.from({ length: 1200 }, (_, i) => ({
      sha256: `c${i.toString(16).padStart(63, '0')}`,
      digests: d(i),
    }));
    await store.headers.put(rows);
    // A second put of the same file keeps the first record.
    await store.headers.put([{ sha256: rows[0]!.sha256, digests: { ...d(99_999), payload: 'sha256:x' } }]);
    const got = await store.headers.of([...rows.map((r) => r.sha256), 'b'.repeat(64)]);
    assert.equal(got.size, 1200);
    assert.deepEqual(got.get(rows[0]!.sha256), d(0));
    assert.deepEqual(got.get(rows[1199]!.sha256), d(1199));
    assert.equal(got.has('b'.repeat(64)), false);
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
    await rejectsWith(store.artifacts.add({ ...art, leaseId: first.lease.id }, 1, clock.now()), 'STALE_FENCING_TOKEN');
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
    assert.deepEqual([...(await ledger.known(['build:2', 'sha256:x', 'sha256:y', 'build:1']))].sort(), [
      'build:1',
      'build:2',
      'sha256:x',
    ]);
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

  test('the mirror registry keeps mirrors in order of registration; an expiry is kept per repository', async () => {
    const store = await fresh();
    const m = (url: string, at: number) => ({ url, rsyncUrl: null, country: 'DE', contact: null, createdAt: at });
    assert.equal(await store.mirrors.add(m('http://b.example/', 2)), true);
    assert.equal(await store.mirrors.add(m('http://a.example/', 5)), true);
    assert.equal(await store.mirrors.add(m('http://b.example/', 9)), false, 'the same URL again changes nothing');
    assert.deepEqual(
      (await store.mirrors.list()).map((x) => [x.url, x.createdAt, x.country]),
      [
        ['http://b.example/', 2, 'DE'],
        ['http://a.example/', 5, 'DE'],
      ],
    );
    // A check replaces the mirror's last one per repository arch; removing the mirror removes its checks.
    const check = (url: string, arch: string, state: 'current' | 'behind' | 'bad', at: number) => ({
      mirrorUrl: url,
      repoId: 7,
      arch,
      state,
      snapshotId: state === 'bad' ? null : 3,
      behind: state === 'behind' ? 1 : null,
      sha256: 'ab'.repeat(32),
      detail: null,
      checkedAt: at,
    });
    await store.mirrors.recordChecks([
      check('http://b.example/', 'x86_64', 'current', 10),
      check('http://a.example/', 'x86_64', 'current', 10),
    ]);
    await store.mirrors.recordChecks([
      check('http://b.example/', 'x86_64', 'behind', 20),
      check('http://b.example/', 'aarch64', 'bad', 20),
    ]);
    assert.deepEqual(
      (await store.mirrors.checks(7)).map((c) => [c.mirrorUrl, c.arch, c.state, c.behind, c.checkedAt]),
      [
        ['http://a.example/', 'x86_64', 'current', null, 10],
        ['http://b.example/', 'aarch64', 'bad', null, 20],
        ['http://b.example/', 'x86_64', 'behind', 1, 20],
      ],
    );
    assert.deepEqual(await store.mirrors.checks(8), []);
    assert.equal(await store.mirrors.remove('http://b.example/'), true);
    assert.equal(await store.mirrors.remove('http://b.example/'), false);
    assert.deepEqual(
      (await store.mirrors.checks()).map((c) => c.mirrorUrl),
      ['http://a.example/'],
    );
    assert.equal(await store.mirrors.expiredThrough(7), 0);
    await store.mirrors.expire(7, 3, clock.now());
    await store.mirrors.expire(7, 11, clock.now());
    assert.equal(await store.mirrors.expiredThrough(7), 11);
    assert.equal(await store.mirrors.expiredThrough(8), 0);
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
      store.agents.register({ name: 'same', role: 'build', arches: [], capabilities: {}, tokenId: other }, clock.now()),
      'FORBIDDEN',
    );
  });

  test('snapshot package lists stored as changes read back whole, in any process, along a chain of them', async () => {
    const store = await fresh();
    const releases = new ReleaseStore(store.db);
    const repo = await releases.createRepo({ name: 'big', arches: ['x86_64'], keys: [], keepDays: 1 }, clock.now());
    const pkg = (i: number, v = 1) => ({
      artifactId: i,
      sha256: (i * 1000 + v).toString(16).padStart(64, '0'),
      name: `p${String(i).padStart(4, '0')}-${v}-1.x86_64.rpm`,
      arch: 'x86_64',
      nevra: `p${String(i).padStart(4, '0')}-${v}-1.x86_64`,
      buildId: i,
    });
    let list = Array.from({ length: 500 }, (_, i) => pkg(i));
    const snap = (packages: typeof list, baseId: number | null) =>
      releases.createSnapshot({ repoId: repo.id, releaseId: null, packages, keyFingerprint: 'k', baseId }, clock.now());
    let prev = await snap(list, null);
    const first = prev.id;
    const lists = new Map([[prev.id, list]]);
    // 20 releases, each replacing one package and adding one: past the longest chain of changes kept.
    for (let r = 0; r < 20; r++) {
      list = [...list.filter((p) => p.artifactId !== r), pkg(r, 2), pkg(1000 + r)].reverse();
      prev = await snap(list, prev.id);
      lists.set(prev.id, list);
    }
    const sorted = (ps: typeof list) =>
      [...ps].sort((a, b) => (a.arch + a.name < b.arch + b.name ? -1 : a.arch + a.name > b.arch + b.name ? 1 : 0));
    const stored = await store.db.selectFrom('snapshots').select(['id', 'packages']).execute();
    const sizes = new Map(stored.map((r) => [r.id, r.packages.length]));
    // A release's record holds its changes, not the repository's 500 entries.
    assert.ok(sizes.get(prev.id)! < sizes.get(first)! / 20, `changes stored whole: ${[...sizes.values()]}`);
    // Another process (an empty cache) reads every list back whole, one by one and all at once.
    const other = new ReleaseStore(store.db);
    for (const [id, want] of lists) assert.deepEqual((await other.getSnapshot(id))!.packages, sorted(want));
    const all = await new ReleaseStore(store.db).listSnapshots(repo.id);
    assert.equal(all.length, lists.size);
    for (const s of all) assert.deepEqual(s.packages, sorted(lists.get(s.id)!));
  });
});
