import path from 'node:path';
import { LenixError } from '../core/errors.js';
import type { BlobStore } from './blob-store.js';
import type { S3Config } from './s3-blob-store.js';

/** Which blob store a server or `lenix fsck` uses: the data folder's, or an S3 bucket. */
export type BlobStoreConfig =
  | { readonly kind: 'folder'; readonly dir: string }
  | { readonly kind: 's3'; readonly s3: S3Config; readonly cacheDir: string };

/**
 * `--blobs`: nothing (DATA/blobs), a folder path, or `s3://BUCKET[/PREFIX]?endpoint=URL[&region=R][&path-style=false]`.
 * Credentials never go on the command line (other users see it in `ps`): LENIX_S3_ACCESS_KEY_ID and
 * LENIX_S3_SECRET_ACCESS_KEY, or the AWS_ variables of the same names.
 */
export function parseBlobStore(
  value: string | undefined,
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): BlobStoreConfig {
  if (!value) return { kind: 'folder', dir: path.join(dataDir, 'blobs') };
  if (!value.startsWith('s3://')) return { kind: 'folder', dir: path.resolve(value) };
  const bad = (why: string) => new LenixError('BAD_REQUEST', `--blobs ${value}: ${why}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad('not a URL');
  }
  const bucket = url.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw bad('the bucket name is not a valid S3 bucket name');
  const endpoint = url.searchParams.get('endpoint');
  if (!endpoint || !/^https?:\/\//.test(endpoint)) throw bad('endpoint=http(s)://HOST[:PORT] is required');
  const accessKeyId = env['LENIX_S3_ACCESS_KEY_ID'] ?? env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['LENIX_S3_SECRET_ACCESS_KEY'] ?? env['AWS_SECRET_ACCESS_KEY'];
  if (!accessKeyId || !secretAccessKey)
    throw bad('set LENIX_S3_ACCESS_KEY_ID and LENIX_S3_SECRET_ACCESS_KEY in the environment');
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  const region = url.searchParams.get('region');
  return {
    kind: 's3',
    s3: {
      endpoint,
      bucket,
      accessKeyId,
      secretAccessKey,
      forcePathStyle: url.searchParams.get('path-style') !== 'false',
      ...(region ? { region } : {}),
      ...(prefix ? { prefix } : {}),
    },
    cacheDir: path.join(dataDir, 'blob-cache'),
  };
}

/** Open the configured store (the S3 client loads only when S3 is configured). */
export async function openBlobStore(cfg: BlobStoreConfig): Promise<BlobStore & { close?(): void }> {
  if (cfg.kind === 'folder') {
    const { FsBlobStore } = await import('./blob-store.js');
    return new FsBlobStore(cfg.dir);
  }
  const { S3BlobStore } = await import('./s3-blob-store.js');
  return new S3BlobStore(cfg.s3, cfg.cacheDir);
}
