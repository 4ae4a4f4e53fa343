import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBlobStore } from './blob-config.js';

const env = { LENIX_S3_ACCESS_KEY_ID: 'AK', LENIX_S3_SECRET_ACCESS_KEY: 'SK' };

test('no --blobs is the data folder; a path is a folder', () => {
  assert.deepEqual(parseBlobStore(undefined, '/srv/lenix', env), { kind: 'folder', dir: '/srv/lenix/blobs' });
  assert.deepEqual(parseBlobStore('/mnt/blobs', '/srv/lenix', env), { kind: 'folder', dir: '/mnt/blobs' });
});

test('an s3:// URL names the bucket, prefix, endpoint and region; keys come from the environment', () => {
  assert.deepEqual(
    parseBlobStore('s3://lenix-prod/site-a/?endpoint=http://127.0.0.1:7480&region=eu-1', '/srv/lenix', env),
    {
      kind: 's3',
      s3: {
        endpoint: 'http://127.0.0.1:7480',
        bucket: 'lenix-prod',
        accessKeyId: 'AK',
        secretAccessKey: 'SK',
        forcePathStyle: true,
        region: 'eu-1',
        prefix: 'site-a',
      },
      cacheDir: '/srv/lenix/blob-cache',
    },
  );
  const aws = parseBlobStore('s3://b1b?endpoint=https://s3.example&path-style=false', '/d', {
    AWS_ACCESS_KEY_ID: 'A',
    AWS_SECRET_ACCESS_KEY: 'S',
  });
  assert.equal(aws.kind === 's3' && aws.s3.forcePathStyle, false);
});

test('a bad s3:// URL or missing credentials is a coded error naming what is wrong', () => {
  for (const [url, e, why] of [
    ['s3://Bad_Bucket?endpoint=http://x', env, /bucket name/],
    ['s3://bucket', env, /endpoint=/],
    ['s3://bucket?endpoint=ftp://x', env, /endpoint=/],
    ['s3://bucket?endpoint=http://x', {}, /LENIX_S3_ACCESS_KEY_ID/],
  ] as const) {
    assert.throws(
      () => parseBlobStore(url, '/d', e),
      (err: Error & { code?: string }) => err.code === 'BAD_REQUEST' && why.test(err.message),
    );
  }
});
