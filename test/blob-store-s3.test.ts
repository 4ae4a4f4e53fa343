import { CopyObjectCommand, DeleteBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3BlobStore, type S3Config } from '../src/store/s3-blob-store.js';
import { blobStoreSuite, sha } from './support/blob-store-suite.js';
import { startRadosgw, type TestS3 } from './support/ceph.js';

/**
 * The S3 backend against a real S3 service — Ceph radosgw on a one-host cluster (test/support/ceph.ts) — not a
 * fake: write-once needs a server that honours `If-None-Match: *` (s3rver ignores it).
 */
let s3: TestS3;
before(async () => {
  s3 = await startRadosgw();
});
after(async () => {
  await s3?.stop();
});

blobStoreSuite('S3 (Ceph radosgw)', async () => {
  const cfg: S3Config = {
    endpoint: s3.endpoint,
    bucket: `lenix-${randomBytes(4).toString('hex')}`,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    prefix: 'blobs',
  };
  const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'lenix-s3-cache-'));
  const store = new S3BlobStore(cfg, cacheDir);
  // The test's own client: it writes behind the store's back, as an operator or an attacker with bucket access could.
  const raw = s3.client();
  return {
    store,
    corrupt: async (sha, bytes) => {
      await raw.send(new PutObjectCommand({ Bucket: cfg.bucket, Key: store.keyOf(sha), Body: bytes }));
      // As another server sees it: that one has no copy in its cache.
      await rm(path.join(cacheDir, 'blobs', sha.slice(0, 2), sha.slice(2)), { force: true });
    },
    partials: async () => [
      ...(await readdir(path.join(cacheDir, 'blobs', 'tmp'))),
      ...(await store.partialUploads()).map((u) => u.key),
    ],
    age: async (sha, ageMs) => {
      const Key = store.keyOf(sha);
      await raw.send(
        new CopyObjectCommand({
          Bucket: cfg.bucket,
          Key,
          CopySource: `${cfg.bucket}/${Key}`,
          MetadataDirective: 'REPLACE',
          Metadata: { 'stored-at': String(Date.now() - ageMs) },
        }),
      );
    },
    close: async () => {
      await store.collect(new Set(), Date.now(), 0); // the bucket must be empty to be deleted
      await raw.send(new DeleteBucketCommand({ Bucket: cfg.bucket })).catch(() => undefined);
      store.close();
      raw.destroy();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
});

describe('S3 blob store: what only an object store has', () => {
  const open = async () => {
    const cfg: S3Config = {
      endpoint: s3.endpoint,
      bucket: `lenix-${randomBytes(4).toString('hex')}`,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    };
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'lenix-s3-cache-'));
    const store = new S3BlobStore(cfg, cacheDir, 8 * 1024 * 1024);
    await store.init();
    return { cfg, cacheDir, store };
  };

  test('an object is written once: storing the same bytes again leaves the first object as it was', async () => {
    const { cfg, cacheDir, store } = await open();
    const raw = s3.client();
    try {
      const { sha256 } = await store.put(Buffer.from('once'));
      const first = await raw.send(new HeadObjectCommand({ Bucket: cfg.bucket, Key: store.keyOf(sha256) }));
      await store.put(Buffer.from('once'));
      const second = await raw.send(new HeadObjectCommand({ Bucket: cfg.bucket, Key: store.keyOf(sha256) }));
      assert.equal(second.Metadata?.['stored-at'], first.Metadata?.['stored-at']);
      assert.equal(second.ETag, first.ETag);
      // The service itself refuses a second write under the name (what makes the store write-once).
      await assert.rejects(
        raw.send(
          new PutObjectCommand({ Bucket: cfg.bucket, Key: store.keyOf(sha256), Body: 'other', IfNoneMatch: '*' }),
        ),
        (err: Error & { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode === 412,
      );
      await store.collect(new Set(), Date.now(), 0);
    } finally {
      raw.destroy();
      store.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  test('a large blob goes up in parts, comes back whole, and leaves the cache within its bound', async () => {
    const { cacheDir, store } = await open();
    try {
      const big = randomBytes(40 * 1024 * 1024); // three parts of 16 MiB at most
      const chunks = async function* () {
        for (let at = 0; at < big.length; at += 1024 * 1024) yield big.subarray(at, at + 1024 * 1024);
      };
      const { sha256, size } = await store.put(chunks());
      assert.equal(size, big.length);
      assert.deepEqual(await store.partialUploads(), []);
      // Bigger than the 8 MiB cache: evicted once no caller holds it, fetched and verified again on read.
      assert.deepEqual(await readdir(path.join(cacheDir, 'blobs', sha256.slice(0, 2))).catch(() => []), []);
      assert.equal(await store.verify(sha256), big.length);
      const back = await store.withLocalFile(sha256, (file) => readFile(file));
      assert.ok(back.equals(big));
      await store.collect(new Set(), Date.now(), 0);
    } finally {
      store.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  test('an unreachable object store is a coded error, not a crash', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'lenix-s3-cache-'));
    const store = new S3BlobStore(
      { endpoint: 'http://127.0.0.1:9', bucket: 'none', accessKeyId: 'x', secretAccessKey: 'y' },
      cacheDir,
    );
    try {
      await assert.rejects(store.put(Buffer.from('lost')), { code: 'BLOB_STORE_UNAVAILABLE' });
      await assert.rejects(store.has(sha('lost')), { code: 'BLOB_STORE_UNAVAILABLE' });
    } finally {
      store.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
