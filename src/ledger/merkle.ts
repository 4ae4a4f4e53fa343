import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The Merkle tree of RFC 6962 §2.1 (and RFC 9162 §2.1): SHA-256, leaf hashes prefixed 0x00, interior nodes
 * 0x01, the split at the largest power of two smaller than the size. Pure: hashes come from a HashSource,
 * which a log backs with its stored hashes (tiles) and tests with plain arrays.
 */
export type Hash = Uint8Array; // 32 bytes

export const HASH_SIZE = 32;

export function sha256(...parts: Uint8Array[]): Hash {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

export const EMPTY_ROOT: Hash = sha256();

export function leafHash(entry: Uint8Array): Hash {
  return sha256(LEAF, entry);
}

export function nodeHash(left: Hash, right: Hash): Hash {
  return sha256(NODE, left, right);
}

export function hashEquals(a: Hash, b: Hash): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Where tree hashes come from: `subtree(level, index)` is the hash of the complete subtree over leaves
 * [index·2^level, (index+1)·2^level) — level 0 is a leaf hash. Only complete subtrees are ever asked for.
 */
export interface HashSource {
  subtree(level: number, index: number): Hash;
}

/** The largest power of two strictly smaller than n (n ≥ 2): RFC 6962's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

/** MTH(D[start : start+size]) for any range inside the tree (RFC 6962 §2.1). */
export function rangeHash(src: HashSource, start: number, size: number): Hash {
  if (size === 0) return EMPTY_ROOT;
  if (isPowerOfTwo(size) && start % size === 0) return src.subtree(Math.log2(size), start / size);
  const k = splitPoint(size);
  return nodeHash(rangeHash(src, start, k), rangeHash(src, start + k, size - k));
}

export function rootHash(src: HashSource, size: number): Hash {
  return rangeHash(src, 0, size);
}

/** PATH(m, D[n]) of RFC 6962 §2.1.1: the audit path for leaf m in a tree of n leaves. */
export function inclusionProof(src: HashSource, index: number, size: number): Hash[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const path: Hash[] = [];
  const walk = (m: number, start: number, n: number): void => {
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, start, k);
      path.push(rangeHash(src, start + k, n - k));
    } else {
      walk(m - k, start + k, n - k);
      path.push(rangeHash(src, start, k));
    }
  };
  walk(index, 0, size);
  return path;
}

/** PROOF(m, D[n]) of RFC 6962 §2.1.2: that the tree of size m is a prefix of the tree of size n. */
export function consistencyProof(src: HashSource, m: number, n: number): Hash[] {
  if (!(m >= 0 && m <= n)) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  if (m === 0 || m === n) return [];
  const proof: Hash[] = [];
  const sub = (m2: number, start: number, n2: number, complete: boolean): void => {
    if (m2 === n2) {
      if (!complete) proof.push(rangeHash(src, start, n2));
      return;
    }
    const k = splitPoint(n2);
    if (m2 <= k) {
      sub(m2, start, k, complete);
      proof.push(rangeHash(src, start + k, n2 - k));
    } else {
      sub(m2 - k, start + k, n2 - k, false);
      proof.push(rangeHash(src, start, k));
    }
  };
  sub(m, 0, n, true);
  return proof;
}

/** Verify an inclusion proof (RFC 9162 §2.1.3.2). Fails closed on any malformed input. */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (
    proof.length > 64 ||
    proof.some((p) => p.length !== HASH_SIZE) ||
    leaf.length !== HASH_SIZE ||
    root.length !== HASH_SIZE
  )
    return false;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && hashEquals(r, root);
}

/** Verify a consistency proof between two tree heads (RFC 9162 §2.1.4.2). */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Hash,
  secondRoot: Hash,
  proof: readonly Hash[],
): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return false;
  if (proof.length > 64 || proof.some((p) => p.length !== HASH_SIZE)) return false;
  if (first === second) return proof.length === 0 && hashEquals(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  let fn = BigInt(first - 1);
  let sn = BigInt(second - 1);
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && hashEquals(fr, firstRoot) && hashEquals(sr, secondRoot);
}

/** A HashSource over leaf hashes held in memory (tests, small logs, proof bundles). */
export class MemoryHashes implements HashSource {
  private readonly levels: Hash[][];
  constructor(leaves: readonly Hash[] = []) {
    this.levels = [[]];
    for (const l of leaves) this.append(l);
  }

  get size(): number {
    return this.levels[0]!.length;
  }

  /** Append a leaf hash, completing every subtree it closes (as a log's hash tiles grow). */
  append(leaf: Hash): number {
    const index = this.levels[0]!.length;
    this.levels[0]!.push(leaf);
    let level = 0;
    let i = index;
    while (i % 2 === 1) {
      const left = this.levels[level]![i - 1]!;
      const right = this.levels[level]![i]!;
      level++;
      i = (i - 1) / 2;
      if (this.levels.length === level) this.levels.push([]);
      this.levels[level]!.push(nodeHash(left, right));
    }
    return index;
  }

  subtree(level: number, index: number): Hash {
    const h = this.levels[level]?.[index];
    if (!h) throw new RangeError(`no complete subtree at level ${level} index ${index}`);
    return h;
  }
}
