import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EMPTY_ROOT,
  MemoryHashes,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rootHash,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
  type Hash,
} from './merkle.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

// RFC 6962 reference data, as published with the Certificate Transparency and transparency-dev code.
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(
  unhex,
);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION: [number, number, string[]][] = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

const tree = new MemoryHashes(LEAVES.map(leafHash));

test('tree heads match the RFC 6962 reference roots for every size 0..8', () => {
  assert.equal(hex(EMPTY_ROOT), ROOTS[0]);
  for (let n = 0; n <= 8; n++) assert.equal(hex(rootHash(tree, n)), ROOTS[n], `size ${n}`);
});

test('inclusion proofs match the reference and verify', () => {
  for (const [index, size, want] of INCLUSION) {
    const proof = inclusionProof(tree, index, size);
    assert.deepEqual(proof.map(hex), want, `leaf ${index} of ${size}`);
    assert.ok(verifyInclusion(leafHash(LEAVES[index]!), index, size, proof, unhex(ROOTS[size]!)));
  }
});

test('consistency proofs match the reference and verify', () => {
  for (const [m, n, want] of CONSISTENCY) {
    const proof = consistencyProof(tree, m, n);
    assert.deepEqual(proof.map(hex), want, `${m} -> ${n}`);
    assert.ok(verifyConsistency(m, n, unhex(ROOTS[m]!), unhex(ROOTS[n]!), proof), `${m} -> ${n}`);
  }
});

/** A plain recursive MTH, written straight from RFC 6962 §2.1, to cross-check larger trees. */
function naiveRoot(leaves: readonly Hash[]): Hash {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

test('every proof in every tree up to 40 leaves verifies, and tampered ones do not', () => {
  const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Uint8Array.of(i, (i * 7) % 256)));
  const t = new MemoryHashes();
  for (let n = 1; n <= leaves.length; n++) {
    t.append(leaves[n - 1]!);
    const root = rootHash(t, n);
    assert.equal(hex(root), hex(naiveRoot(leaves.slice(0, n))));
    for (let i = 0; i < n; i++) {
      const p = inclusionProof(t, i, n);
      assert.ok(p.length <= Math.ceil(Math.log2(n)), 'proof length is at most ceil(log2 n)');
      assert.ok(verifyInclusion(leaves[i]!, i, n, p, root));
      if (n > 1) {
        assert.ok(!verifyInclusion(leaves[i]!, (i + 1) % n, n, p, root), 'wrong index');
        assert.ok(!verifyInclusion(leaves[(i + 1) % n]!, i, n, p, root), 'wrong leaf');
        const bad = p.map((h) => h.slice());
        bad[0]![0]! ^= 1;
        assert.ok(!verifyInclusion(leaves[i]!, i, n, bad, root), 'tampered path');
        assert.ok(!verifyInclusion(leaves[i]!, i, n, p.slice(0, -1), root), 'short path');
      }
    }
    for (let m = 1; m <= n; m++) {
      const p = consistencyProof(t, m, n);
      const mRoot = rootHash(t, m);
      assert.ok(verifyConsistency(m, n, mRoot, root, p), `${m} -> ${n}`);
      if (m < n) {
        const forked = mRoot.slice();
        forked[5]! ^= 1;
        assert.ok(!verifyConsistency(m, n, forked, root, p), 'a rewritten old tree is caught');
        assert.ok(!verifyConsistency(m, n, mRoot, root, [...p, p[0]!]), 'extra hash');
      }
    }
  }
});

test('malformed input fails closed', () => {
  const root = rootHash(tree, 8);
  assert.equal(verifyInclusion(leafHash(LEAVES[0]!), -1, 8, [], root), false);
  assert.equal(verifyInclusion(leafHash(LEAVES[0]!), 8, 8, [], root), false);
  assert.equal(verifyInclusion(leafHash(LEAVES[0]!), 0, 8, [new Uint8Array(31)], root), false);
  assert.equal(verifyConsistency(5, 3, root, root, []), false);
  assert.throws(() => inclusionProof(tree, 9, 8), RangeError);
});
