import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Sha256 } from '../core/ids.js';
import { FsBlobStore } from './blob-store.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex') as Sha256;

async function withStore(fn: (s: FsBlobStore, dir: string) => Promise<void>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-blobs-'));
  try {
    const s = new FsBlobStore(dir);
    await s.init();
    await fn(s, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('blobs are stored under their SHA-256 and read back', () =>
  withStore(async (s) => {
    const r = await s.put(Buffer.from('hello'));
    assert.deepEqual(r, { sha256: sha('hello'), size: 5 });
    assert.equal((await s.readAll(r.sha256)).toString(), 'hello');
    assert.equal(await s.has(r.sha256), true);
  }));

test('a digest mismatch or an oversized body stores nothing and leaves no temp file', () =>
  withStore(async (s, dir) => {
    await assert.rejects(s.put(Buffer.from('hello'), { expected: sha('other') }), { code: 'DIGEST_MISMATCH' });
    await assert.rejects(s.put(Buffer.from('x'.repeat(100)), { maxBytes: 10 }), { code: 'BODY_TOO_LARGE' });
    assert.equal(await s.has(sha('hello')), false);
    assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
  }));

test('a blob corrupted on disk is never served', () =>
  withStore(async (s) => {
    const { sha256 } = await s.put(Buffer.from('precious'));
    await writeFile(s.pathOf(sha256), 'tampered');
    await assert.rejects(s.open(sha256), { code: 'BLOB_CORRUPT' });
    await assert.rejects(s.open(sha('absent')), { code: 'ARTIFACT_NOT_FOUND' });
  }));
