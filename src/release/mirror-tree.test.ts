import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FsBlobStore } from '../store/blob-store.js';
import type { SnapshotRecord } from '../store/records.js';
import { MIRROR_DIR, MIRROR_TREES, mirroredSnapshot, syncMirrorTree } from './mirror-tree.js';

test('each snapshot gets its own tree: unchanged packages hard-linked, the link switched, old trees kept for a while', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-mirror-tree-'));
  try {
    const blobs = new FsBlobStore(path.join(dir, 'blobs'));
    const repoDir = path.join(dir, 'repo');
    const pkg = async (name: string) => {
      const { sha256 } = await blobs.put(Buffer.from(`rpm ${name}`));
      return { artifactId: 1, sha256, name, arch: 'x86_64', nevra: name.replace(/\.rpm$/, ''), buildId: 1 };
    };
    const a = await pkg('a-1-1.noarch.rpm');
    const b = await pkg('b-1-1.noarch.rpm');
    const snapshots = new Map<number, SnapshotRecord>();
    const snapshot = async (id: number, packages: SnapshotRecord['packages']) => {
      const md = path.join(repoDir, 'snapshots', String(id), 'x86_64', 'repodata');
      await mkdir(md, { recursive: true });
      await writeFile(path.join(md, 'repomd.xml'), `<repomd>${id}</repomd>`);
      await writeFile(path.join(md, `${id}-primary.xml.gz`), `primary ${id}`);
      const s = {
        id,
        repoId: 1,
        releaseId: null,
        state: 'ready',
        packages,
        repomd: null,
        keyFingerprint: null,
        createdAt: id * 1000,
        publishedAt: id * 1000,
        advisories: [],
        files: null,
      } satisfies SnapshotRecord;
      snapshots.set(id, s);
      return s;
    };
    const sync = async (s: SnapshotRecord, now: number, keepMs = 60_000) =>
      syncMirrorTree({
        blobs,
        repoDir,
        arches: ['x86_64'],
        snapshot: s,
        previous: async (id) => snapshots.get(id) ?? null,
        now,
        keepMs,
      });
    const tree = (id: number, ...p: string[]) => path.join(repoDir, MIRROR_TREES, String(id), ...p);

    // A tree from before trees were kept per snapshot (a plain folder) is adopted as its snapshot's tree.
    await mkdir(path.join(repoDir, MIRROR_DIR, 'x86_64', 'Packages'), { recursive: true });
    await writeFile(path.join(repoDir, MIRROR_DIR, '.snapshot'), '1\n');
    await writeFile(path.join(repoDir, MIRROR_DIR, 'x86_64', 'Packages', a.name), 'rpm a-1-1.noarch.rpm');
    await snapshot(1, [a]);
    assert.deepEqual(await sync(snapshots.get(1)!, Date.now()), { copied: 0, linked: 0, removedTrees: 0 });
    assert.equal(await readlink(path.join(repoDir, MIRROR_DIR)), path.join(MIRROR_TREES, '1'));
    assert.equal(await mirroredSnapshot(repoDir), 1);

    const two = await snapshot(2, [a, b]);
    assert.deepEqual(await sync(two, Date.now()), { copied: 1, linked: 1, removedTrees: 0 });
    assert.equal(await mirroredSnapshot(repoDir), 2);
    assert.equal(
      (await stat(tree(2, 'x86_64', 'Packages', a.name))).ino,
      (await stat(tree(1, 'x86_64', 'Packages', a.name))).ino,
    );
    assert.equal((await stat(tree(2, 'x86_64', 'Packages', b.name))).mode & 0o777, 0o644);
    assert.deepEqual((await readdir(tree(2, 'x86_64', 'repodata'))).sort(), ['2-primary.xml.gz', 'repomd.xml']);
    assert.equal(await readFile(tree(2, 'TIME'), 'utf8'), '2\n');
    // The tree a mirror may still be reading is complete and unchanged.
    assert.deepEqual(await readdir(tree(1, 'x86_64', 'Packages')), [a.name]);
    assert.equal(
      await readFile(path.join(repoDir, MIRROR_DIR, 'x86_64', 'repodata', 'repomd.xml'), 'utf8'),
      '<repomd>2</repomd>',
    );

    // Tree 1 stopped being current when tree 2 was made: it goes once that is longer ago than the keep time.
    const made2 = (await stat(tree(2))).mtimeMs;
    const three = await snapshot(3, [b]);
    assert.deepEqual(await sync(three, made2 + 30_000), { copied: 0, linked: 1, removedTrees: 0 });
    await utimes(tree(3), new Date(made2 + 50_000), new Date(made2 + 50_000));
    assert.deepEqual(await sync(three, made2 + 90_000), { copied: 0, linked: 0, removedTrees: 1 });
    assert.deepEqual((await readdir(path.join(repoDir, MIRROR_TREES))).sort(), ['2', '3']);
    // A sync to the tree already shown only keeps the link; a rollback switches back to a kept tree.
    assert.deepEqual(await sync(two, made2 + 95_000), { copied: 0, linked: 0, removedTrees: 0 });
    assert.equal(await mirroredSnapshot(repoDir), 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
