import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReleaseStore } from '../src/store/release-store.js';
import { storeSuite } from './support/store-suite.js';

storeSuite('store conformance (leaders)', ({ fresh, clock }) => {
  test('one holder per role: a second server is refused while the first renews in time', async () => {
    const store = await fresh();
    const t = clock.now();
    assert.equal(await store.leaders.claim('publisher', 'a', t, 10_000), 1);
    assert.equal(await store.leaders.claim('publisher', 'b', t + 1, 10_000), null);
    assert.equal(await store.leaders.claim('publisher', 'a', t + 5_000, 10_000), 1, 'renewing keeps the number');
    assert.equal(await store.leaders.claim('publisher', 'b', t + 12_000, 10_000), null, 'renewed until t+15s');
    assert.equal(await store.leaders.claim('reaper', 'b', t, 10_000), 1, 'roles are independent');
    assert.deepEqual(await store.leaders.get('publisher'), {
      role: 'publisher',
      holder: 'a',
      fencing: 1,
      expiresAt: t + 15_000,
    });
  });

  test('an expired holder loses the role and the fencing number grows; resigning hands it on at once', async () => {
    const store = await fresh();
    const t = clock.now();
    assert.equal(await store.leaders.claim('collector', 'a', t, 10_000), 1);
    assert.equal(await store.leaders.claim('collector', 'b', t + 10_001, 10_000), 2, 'a died: b takes over');
    assert.equal(await store.leaders.claim('collector', 'a', t + 10_002, 10_000), null, 'a came back too late');
    await store.leaders.resign('collector', 'a'); // not the holder: changes nothing
    assert.equal(await store.leaders.claim('collector', 'a', t + 10_003, 10_000), null);
    await store.leaders.resign('collector', 'b');
    assert.equal(await store.leaders.claim('collector', 'a', t + 10_004, 10_000), 3);
  });

  test('of many servers claiming at once, exactly one wins', async () => {
    const store = await fresh();
    const t = clock.now();
    const got = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.leaders.claim('publisher', `s${i}`, t, 10_000)),
    );
    assert.equal(got.filter((x) => x !== null).length, 1);
  });

  test('a fenced switch of the current snapshot happens only while the fence still holds the role', async () => {
    const store = await fresh();
    const releases = new ReleaseStore(store.db);
    const t = clock.now();
    const repo = await releases.createRepo({ name: 'fenced', arches: ['x86_64'], keys: [], keepDays: 1 }, t);
    const snap = (n: number) =>
      releases.createSnapshot({ repoId: repo.id, releaseId: null, packages: [], keyFingerprint: `k${n}` }, t);
    const [one, two] = [await snap(1), await snap(2)];
    assert.equal(await store.leaders.claim('publisher', 'a', t, 10_000), 1);
    await releases.setCurrentSnapshot(repo.id, one.id, { role: 'publisher', holder: 'a', fencing: 1 });
    assert.equal((await releases.getRepo(repo.id))?.currentSnapshotId, one.id);
    // a stalls past its lifetime; b takes over. a's late switch must not land.
    assert.equal(await store.leaders.claim('publisher', 'b', t + 10_001, 10_000), 2);
    await assert.rejects(
      releases.setCurrentSnapshot(repo.id, two.id, { role: 'publisher', holder: 'a', fencing: 1 }),
      (e: Error & { code?: string }) => e.code === 'NOT_LEADER',
    );
    assert.equal((await releases.getRepo(repo.id))?.currentSnapshotId, one.id, 'nothing switched');
    await releases.setCurrentSnapshot(repo.id, two.id, { role: 'publisher', holder: 'b', fencing: 2 });
    assert.equal((await releases.getRepo(repo.id))?.currentSnapshotId, two.id);
  });
});
