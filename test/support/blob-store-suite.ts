import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import type { Sha256 } from '../../src/core/ids.js';
import type { BlobStore } from '../../src/store/blob-store.js';

export const sha = (s: string): Sha256 => createHash('sha256').update(s).digest('hex') as Sha256;

/** One backend under test: a fresh empty store, and the backend-specific ways to look under it. */
export interface BlobBackend {
  readonly store: BlobStore;
  /** Overwrite a stored blob's bytes behind the store's back (disk rot, a tampering operator). */
  corrupt(sha256: Sha256, bytes: string): Promise<void>;
  /** Partial writes the store holds (temporary files, unfinished uploads). */
  partials(): Promise<string[]>;
  /** Make a stored blob look `ageMs` older than now (for the collector's grace period). */
  age(sha256: Sha256, ageMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The contract of the BlobStore port, run over every backend (the folder store today; an S3-compatible store
 * joins by calling this with its own backend), as the storage suite runs over SQLite and PostgreSQL.
 */
export function blobStoreSuite(name: string, open: () => Promise<BlobBackend>): void {
  const withBackend = (fn: (b: BlobBackend) => Promise<void>) => async () => {
    const b = await open();
    try {
      await b.store.init();
      await fn(b);
    } finally {
      await b.close();
    }
  };

  describe(`blob store: ${name}`, () => {
    test(
      'blobs are stored under their SHA-256 and read back, whole and as a stream',
      withBackend(async ({ store }) => {
        const r = await store.put(Buffer.from('hello'));
        assert.deepEqual(r, { sha256: sha('hello'), size: 5 });
        assert.equal((await store.readAll(r.sha256)).toString(), 'hello');
        assert.equal(await store.has(r.sha256), true);
        assert.equal(await store.has(sha('absent')), false);
        const { size, stream } = await store.open(r.sha256);
        const parts: Buffer[] = [];
        for await (const c of stream) parts.push(c as Buffer);
        assert.deepEqual([size, Buffer.concat(parts).toString()], [5, 'hello']);
        assert.equal(await store.verify(r.sha256), 5);
        const again = await store.put(
          (async function* () {
            yield Buffer.from('hel');
            yield Buffer.from('lo');
          })(),
        );
        assert.deepEqual(again, r, 'the same bytes streamed in chunks are the same blob');
      }),
    );

    test(
      'a digest mismatch or an oversized body stores nothing and leaves no partial write',
      withBackend(async (b) => {
        await assert.rejects(b.store.put(Buffer.from('hello'), { expected: sha('other') }), {
          code: 'DIGEST_MISMATCH',
        });
        await assert.rejects(b.store.put(Buffer.from('x'.repeat(100)), { maxBytes: 10 }), { code: 'BODY_TOO_LARGE' });
        assert.equal(await b.store.has(sha('hello')), false);
        assert.equal(await b.store.has(sha('x'.repeat(100))), false);
        assert.deepEqual(await b.partials(), []);
      }),
    );

    test(
      'a blob corrupted behind the store is never served, and verify names it',
      withBackend(async (b) => {
        const { sha256 } = await b.store.put(Buffer.from('precious'));
        await b.corrupt(sha256, 'tampered');
        await assert.rejects(b.store.open(sha256), { code: 'BLOB_CORRUPT' });
        await assert.rejects(b.store.readAll(sha256), { code: 'BLOB_CORRUPT' });
        await assert.rejects(b.store.verify(sha256), { code: 'BLOB_CORRUPT' });
        await assert.rejects(b.store.open(sha('absent')), { code: 'ARTIFACT_NOT_FOUND' });
      }),
    );

    test(
      'withLocalFile hands a readable file of the blob for the call only; an absent blob is refused',
      withBackend(async ({ store }) => {
        const { sha256 } = await store.put(Buffer.from('a package'));
        const text = await store.withLocalFile(sha256, (file) => readFile(file, 'utf8'));
        assert.equal(text, 'a package');
        await assert.rejects(
          store.withLocalFile(sha('absent'), async () => 'never called'),
          { code: 'ARTIFACT_NOT_FOUND' },
        );
        await assert.rejects(
          store.withLocalFile('../../etc/passwd' as Sha256, async () => 'never called'),
          {
            code: 'INVALID_DIGEST',
          },
        );
      }),
    );

    test(
      'list names every blob; collect removes only unreferenced blobs past the grace period',
      withBackend(async (b) => {
        const kept = (await b.store.put(Buffer.from('kept'))).sha256;
        const young = (await b.store.put(Buffer.from('young'))).sha256;
        const old = (await b.store.put(Buffer.from('old'))).sha256;
        const listed: string[] = [];
        for await (const s of b.store.list()) listed.push(s);
        assert.deepEqual(listed.sort(), [kept, young, old].sort());
        const hour = 3_600_000;
        await b.age(kept, 2 * hour);
        await b.age(old, 2 * hour);
        const removed = await b.store.collect(new Set([kept]), Date.now(), hour);
        assert.deepEqual(removed, [old]);
        assert.deepEqual(
          [await b.store.has(kept), await b.store.has(young), await b.store.has(old)],
          [true, true, false],
        );
      }),
    );
  });
}
