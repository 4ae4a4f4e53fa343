import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeRepomd } from './mirror-judge.js';

const snap = (id: number, sha: string | null, publishedAt: number | null = id * 10) => ({
  id,
  repomd: sha === null ? null : { x86_64: sha },
  publishedAt,
});
const snaps = [snap(1, 'a'), snap(2, 'b'), snap(3, 'c', null), snap(4, 'd'), snap(5, 'e')];

test('a mirror is current, behind by the snapshots published since its own, or bad', () => {
  assert.deepEqual(judgeRepomd('e', 'x86_64', snaps, 5), { state: 'current', snapshotId: 5, behind: 0 });
  assert.deepEqual(judgeRepomd('d', 'x86_64', snaps, 5), { state: 'behind', snapshotId: 4, behind: 1 });
  // Snapshot 3 never went live: it does not count, and a repomd.xml of it is not one Lenix published.
  assert.deepEqual(judgeRepomd('b', 'x86_64', snaps, 5), { state: 'behind', snapshotId: 2, behind: 2 });
  assert.deepEqual(judgeRepomd('c', 'x86_64', snaps, 5), { state: 'bad', snapshotId: null, behind: null });
  assert.deepEqual(judgeRepomd('zz', 'x86_64', snaps, 5), { state: 'bad', snapshotId: null, behind: null });
  // Another arch's bytes are not this arch's.
  assert.equal(judgeRepomd('e', 'aarch64', snaps, 5).state, 'bad');
});

test('after a rollback, the snapshot rolled back from is behind by none', () => {
  assert.deepEqual(judgeRepomd('e', 'x86_64', snaps, 4), { state: 'behind', snapshotId: 5, behind: 0 });
  assert.deepEqual(judgeRepomd('d', 'x86_64', snaps, 4), { state: 'current', snapshotId: 4, behind: 0 });
});
