import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { MIGRATION_NAMES, migrateToLatest } from '../src/store/migrate.js';
import { rejectsWith, storeSuite } from './support/store-suite.js';

/** Build targets, batches and imports (issue 14), on both dialects. */
storeSuite('store conformance (targets)', ({ fresh, clock, seed, agent }) => {
  test('targets: created once by name, edited, listed; a build keeps the target and batch it names', async () => {
    const store = await fresh();
    const fields = {
      buildRepo: 'b',
      fromRepos: ['x'],
      externalRepos: [{ url: 'https://example.org/el9/', key: 'A'.repeat(40) }],
      arches: ['x86_64'],
      macros: { dist: '.lx9' },
      releaseTo: null,
      platform: 'el9',
    };
    const t = await store.targets.create('lx9', fields, clock.now());
    assert.deepEqual(t.macros, { dist: '.lx9' });
    assert.deepEqual(t.externalRepos, fields.externalRepos);
    await rejectsWith(store.targets.create('lx9', fields, clock.now()), 'TARGET_EXISTS');
    assert.equal(t.platform, 'el9');
    const edited = await store.targets.update(
      t.id,
      { ...fields, fromRepos: [], releaseTo: 'r', platform: null },
      clock.now(),
    );
    assert.deepEqual([edited.fromRepos, edited.releaseTo, edited.platform], [[], 'r', null]);
    assert.deepEqual(
      (await store.targets.withBuildRepo('b')).map((x) => x.name),
      ['lx9'],
    );
    const batch = await store.batches.create({ targetId: t.id, groups: [['a'], ['b', 'c']], createdBy: 'me' }, 1);
    const { builds } = await seed(store);
    const made = await store.builds.create(
      {
        sourceId: builds[0]!.build.sourceId,
        commitId: builds[0]!.build.commit.id,
        ref: 'main',
        priority: 0,
        arches: ['x86_64'],
        specPath: 'a.spec',
        packageName: 'a',
        packageEvr: '1-1',
        createdBy: 'me',
        maxAttempts: 1,
        targetId: t.id,
        batchId: batch.id,
      },
      clock.now(),
    );
    assert.deepEqual([made.build.targetId, made.build.batchId], [t.id, batch.id]);
  });

  test("a lease brings its build with its batch; a completion names the build's batch", async () => {
    const store = await fresh();
    const t = await store.targets.create(
      'lx9',
      {
        buildRepo: 'b',
        fromRepos: [],
        externalRepos: [],
        arches: ['x86_64'],
        macros: {},
        releaseTo: null,
        platform: null,
      },
      clock.now(),
    );
    const batch = await store.batches.create({ targetId: t.id, groups: [['a']], createdBy: 'me' }, 1);
    const { source, commit } = await seed(store, 'a', 0);
    const { build } = await store.builds.create(
      {
        sourceId: source.id,
        commitId: commit.id,
        ref: 'main',
        priority: 0,
        arches: ['x86_64'],
        specPath: 'a.spec',
        packageName: 'a',
        packageEvr: '1-1',
        createdBy: 'me',
        maxAttempts: 1,
        targetId: t.id,
        batchId: batch.id,
      },
      clock.now(),
    );
    const a = await agent(store);
    const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
    assert.deepEqual(
      [g.build.id, g.build.batchId, g.build.targetId, g.build.state],
      [build.id, batch.id, t.id, 'running'],
    );
    assert.deepEqual(g.build, await store.builds.get(build.id));
    const r = await store.tasks.complete(
      g.lease.id,
      g.lease.fencingToken,
      a.tokenId,
      { kind: 'failure', code: 'BUILD_FAILED', reason: 'no' },
      null,
      { kind: 'none' },
      clock.now(),
    );
    assert.deepEqual([r.buildState, r.batchId], ['failed', batch.id]);
  });

  test('batches: a group is claimed once; a batch ends once', async () => {
    const store = await fresh();
    const t = await store.targets.create(
      'lx9',
      {
        buildRepo: 'b',
        fromRepos: [],
        externalRepos: [],
        arches: ['x86_64'],
        macros: {},
        releaseTo: null,
        platform: null,
      },
      clock.now(),
    );
    const b = await store.batches.create({ targetId: t.id, groups: [['a'], ['b']], createdBy: 'me' }, 1);
    assert.equal(await store.batches.startedGroup(b.id, 0, []), true);
    assert.equal(await store.batches.startedGroup(b.id, 0, []), false, 'the same group is not started twice');
    await store.batches.setBuilds(b.id, [[7]]);
    assert.deepEqual((await store.batches.get(b.id))!.builds, [[7]]);
    assert.equal((await store.batches.running()).length, 1);
    assert.equal(await store.batches.finish(b.id, 'failed', 'build 7 failed', 2), true);
    assert.equal(await store.batches.finish(b.id, 'succeeded', null, 3), false);
    assert.equal((await store.batches.get(b.id))!.state, 'failed');
  });

  test('imports are recorded with the key they verified against, and keep their blobs', async () => {
    const store = await fresh();
    const i = await store.imports.add(
      {
        sha256: 'f'.repeat(64),
        name: 'up-1-1.noarch.rpm',
        nevra: 'up-1-1.noarch',
        arch: 'noarch',
        kind: 'rpm',
        size: 10,
        keyFingerprint: null,
        repo: 'r',
        importedBy: 'me',
      },
      clock.now(),
    );
    assert.equal((await store.imports.findBySha('f'.repeat(64)))!.id, i.id);
    assert.equal((await store.imports.list(10)).length, 1);
    assert.ok((await store.artifacts.referencedBlobs()).has('f'.repeat(64)), 'blob GC keeps imported packages');
  });

  test('package metadata: stored once per digest and file, read back byte for byte in the order asked', async () => {
    const store = await fresh();
    const entry = (n: number, file = `p${n}.rpm`) => {
      const sha256 = String(n).padStart(64, '0');
      const b = (k: string) => Buffer.from(`<${k} ${n} ${'x'.repeat(n)}>\0\xff`, 'latin1');
      return {
        sha256,
        file,
        size: { primary: 10 * n, filelists: 10 * n + 1, other: 10 * n + 2 },
        gz: { primary: b('P'), filelists: b('F'), other: b('O') },
      };
    };
    const all = Array.from({ length: 1200 }, (_, i) => entry(i + 1));
    await store.packageMetadata.put(all.slice(0, 700), clock.now());
    await store.packageMetadata.put([{ ...entry(1), gz: { ...entry(1).gz, primary: Buffer.from('changed') } }], 2);
    const keys = all.map((e) => ({ sha256: e.sha256, file: e.file }));
    assert.deepEqual(
      (await store.packageMetadata.missing(keys)).map((k) => k.file),
      all.slice(700).map((e) => e.file),
    );
    assert.deepEqual(await store.packageMetadata.missing([{ sha256: entry(1).sha256, file: 'other.rpm' }]), [
      { sha256: entry(1).sha256, file: 'other.rpm' },
    ]);
    await store.packageMetadata.put(all.slice(700), clock.now());
    const order = [...keys].reverse();
    const read: { sha256: string; file: string; size: Record<string, number>; gz: Record<string, Uint8Array> }[] = [];
    for await (const chunk of store.packageMetadata.read(order)) read.push(...chunk);
    assert.deepEqual(
      read.map((r) => r.file),
      order.map((k) => k.file),
    );
    const one = read.find((r) => r.file === 'p1.rpm')!;
    assert.deepEqual(Buffer.from(one.gz.primary!), entry(1).gz.primary, 'the first put is kept');
    assert.deepEqual(one.size, entry(1).size);
    const last = read[0]!;
    assert.deepEqual(Buffer.from(last.gz.other!), entry(1200).gz.other);
    assert.deepEqual(last.size, entry(1200).size);
  });

  test('migration 0019 keeps each stored entry as its gzip member and the length of its plain text', async () => {
    const store = await fresh('0018-queue-partial-indexes');
    const bytes = (t: string) => Buffer.from(t, 'utf8');
    const sha256 = 'e'.repeat(64);
    await sql`insert into package_metadata (sha256, file, primary_xml, primary_gz, filelists_xml, filelists_gz,
        other_xml, other_gz, created_at)
      values (${sha256}, 'e.rpm', ${bytes('<p>\u00ff</p>')}, ${bytes('P')}, ${bytes('<f/>')}, ${bytes('FF')},
        ${bytes('')}, ${bytes('OOO')}, 7)`.execute(store.db);
    const applied = await migrateToLatest(store.db, store.dialect);
    assert.deepEqual(applied, MIGRATION_NAMES.slice(MIGRATION_NAMES.indexOf('0019-metadata-gz-only')));
    const read = [];
    for await (const chunk of store.packageMetadata.read([{ sha256, file: 'e.rpm' }])) read.push(...chunk);
    assert.equal(read.length, 1);
    assert.deepEqual(read[0]!.size, { primary: 9, filelists: 4, other: 0 }, 'bytes, not characters');
    assert.deepEqual(
      Object.values(read[0]!.gz).map((b) => Buffer.from(b).toString('utf8')),
      ['P', 'FF', 'OOO'],
    );
  });
});
