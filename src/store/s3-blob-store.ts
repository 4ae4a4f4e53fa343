import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { LenixError } from '../core/errors.js';
import { parseSha256, type Sha256 } from '../core/ids.js';
import { type BlobStore, FsBlobStore } from './blob-store.js';

/** Where the objects live: any S3-compatible service (Ceph radosgw, AWS S3, ...). */
export interface S3Config {
  readonly endpoint: string;
  readonly bucket: string;
  readonly region?: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Path-style URLs (endpoint/bucket/key), as radosgw and most self-hosted services want; default true. */
  readonly forcePathStyle?: boolean;
  /** Key prefix, so several Lenix installations can share a bucket. */
  readonly prefix?: string;
}

/** Objects up to this size go up in one PUT; larger ones as multipart uploads of this part size. */
const PART_BYTES = 16 * 1024 * 1024;
/** User metadata recording when the blob was first stored (kept across copies, unlike LastModified). */
const STORED_AT = 'stored-at';

/**
 * Blobs in an S3 bucket at PREFIX/sha256/ab/abcdef… Every object is written once (`If-None-Match: *`), after
 * its bytes were hashed locally (a declared digest that does not match stores nothing) and with a Content-MD5
 * the service checks, so an object under a digest's name holds those bytes when written. Reads are verified
 * too: an object is downloaded whole into a local cache — an FsBlobStore, which hashes it on the way in — before
 * any byte is served, so an object changed in the bucket is refused (BLOB_CORRUPT), never passed on. The cache
 * holds up to `cacheBytes` (least recently used out first; files handed to withLocalFile stay while in use)
 * and starts empty at every start.
 */
export class S3BlobStore implements BlobStore {
  readonly shared = true;
  private readonly client: S3Client;
  private readonly cache: FsBlobStore;
  private readonly prefix: string;
  /** Cached blobs, least recently used first, with their sizes; and how many callers hold each one's file. */
  private readonly cached = new Map<string, number>();
  private readonly inUse = new Map<string, number>();
  private cachedBytes = 0;

  constructor(
    private readonly cfg: S3Config,
    private readonly cacheDir: string,
    private readonly cacheBytes = 4 * 1024 * 1024 * 1024,
  ) {
    this.client = new S3Client({
      endpoint: cfg.endpoint,
      region: cfg.region ?? 'us-east-1',
      forcePathStyle: cfg.forcePathStyle ?? true,
      credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
      // Integrity is ours (SHA-256 and Content-MD5); SDK trailers are not understood by every S3 service.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.cache = new FsBlobStore(path.join(cacheDir, 'blobs'));
    this.prefix = `${(cfg.prefix ?? '').replace(/\/+$/, '')}${cfg.prefix ? '/' : ''}sha256/`;
  }

  keyOf(sha256: Sha256): string {
    return `${this.prefix}${sha256.slice(0, 2)}/${sha256}`;
  }

  async init(): Promise<void> {
    await this.cache.init();
    const exists = await this.s3(() => this.client.send(new HeadBucketCommand({ Bucket: this.cfg.bucket }))).then(
      () => true,
      (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
    );
    if (!exists) {
      await this.s3(() => this.client.send(new CreateBucketCommand({ Bucket: this.cfg.bucket }))).catch(
        (err: unknown) => {
          if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(nameOf(err))) throw err;
        },
      );
    }
  }

  /**
   * Hash and spool into the local cache (which refuses a digest mismatch or an oversized body, keeping
   * nothing), then upload from there. An object already under that name is left as it is: same name, same bytes.
   */
  async put(
    body: AsyncIterable<Uint8Array> | Uint8Array,
    opts: { expected?: Sha256; maxBytes?: number } = {},
  ): Promise<{ sha256: Sha256; size: number }> {
    const stored = await this.cache.put(body, opts);
    this.remember(stored.sha256, stored.size);
    await this.withLocalFile(stored.sha256, (file) => this.upload(stored.sha256, stored.size, file));
    return stored;
  }

  private async upload(sha256: Sha256, size: number, file: string): Promise<void> {
    const Key = this.keyOf(sha256);
    const Metadata = { [STORED_AT]: String(Date.now()) };
    if (size <= PART_BYTES) {
      const bytes = await readRange(file, 0, size);
      await this.s3(() =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.cfg.bucket,
            Key,
            Body: bytes,
            ContentLength: size,
            ContentMD5: md5(bytes),
            IfNoneMatch: '*',
            Metadata,
          }),
        ),
      ).catch((err: unknown) => {
        if (!isPreconditionFailed(err)) throw err;
      });
      return;
    }
    if (await this.has(sha256)) return;
    const { UploadId } = await this.s3(() =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.cfg.bucket, Key, Metadata })),
    );
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let at = 0, n = 1; at < size; at += PART_BYTES, n++) {
        const bytes = await readRange(file, at, Math.min(PART_BYTES, size - at));
        const r = await this.s3(() =>
          this.client.send(
            new UploadPartCommand({
              Bucket: this.cfg.bucket,
              Key,
              UploadId,
              PartNumber: n,
              Body: bytes,
              ContentLength: bytes.length,
              ContentMD5: md5(bytes),
            }),
          ),
        );
        parts.push({ ETag: r.ETag ?? '', PartNumber: n });
      }
      await this.s3(() =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.cfg.bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: parts },
            IfNoneMatch: '*',
          }),
        ),
      ).catch((err: unknown) => {
        if (!isPreconditionFailed(err)) throw err;
      });
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key, UploadId }))
        .catch(() => undefined);
      throw err;
    }
  }

  async has(sha256: Sha256): Promise<boolean> {
    parseSha256(sha256);
    return this.s3(() => this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.keyOf(sha256) })))
      .then(() => true)
      .catch((err: unknown) => (isNotFound(err) ? false : Promise.reject(err)));
  }

  /** Download into the cache unless it is there; the cache hashes the bytes and refuses a mismatch. */
  private async fetch(sha256: Sha256): Promise<void> {
    if (this.cached.has(sha256) && (await this.cache.has(sha256))) {
      this.remember(sha256, this.cached.get(sha256)!);
      return;
    }
    const body = await this.get(sha256);
    const stored = await this.cache.put(body, { expected: sha256 }).catch((err: unknown) => {
      if (err instanceof LenixError && err.code === 'DIGEST_MISMATCH')
        throw new LenixError('BLOB_CORRUPT', `object ${this.keyOf(sha256)} does not match its digest`, { cause: err });
      throw err;
    });
    this.remember(sha256, stored.size);
  }

  private async get(sha256: Sha256): Promise<AsyncIterable<Uint8Array>> {
    parseSha256(sha256);
    const r = await this.s3(() =>
      this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.keyOf(sha256) })),
    ).catch((err: unknown) => {
      if (isNotFound(err)) throw new LenixError('ARTIFACT_NOT_FOUND', `no blob ${sha256}`);
      throw err;
    });
    if (!r.Body) throw new LenixError('BLOB_STORE_UNAVAILABLE', `empty answer for ${this.keyOf(sha256)}`);
    return r.Body as AsyncIterable<Uint8Array>;
  }

  async open(sha256: Sha256): Promise<{ size: number; stream: Readable }> {
    parseSha256(sha256);
    const release = this.hold(sha256);
    try {
      await this.fetch(sha256);
      const r = await this.cache.open(sha256);
      // Held until the file is open (an eviction after that cannot take the bytes from under the reader).
      const done = () => void release().catch(() => undefined);
      r.stream.once('open', done).once('error', done).once('close', done);
      return r;
    } catch (err) {
      await release();
      throw err;
    }
  }

  async readAll(sha256: Sha256): Promise<Buffer> {
    return this.withLocalFile(sha256, () => this.cache.readAll(sha256));
  }

  /** Check the object itself (not the cache): it still hashes to its name. */
  async verify(sha256: Sha256): Promise<number> {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of await this.get(sha256)) {
      hash.update(chunk);
      size += chunk.length;
    }
    if (hash.digest('hex') !== sha256)
      throw new LenixError('BLOB_CORRUPT', `object ${this.keyOf(sha256)} does not match its digest`);
    return size;
  }

  async withLocalFile<T>(sha256: Sha256, fn: (file: string) => Promise<T>): Promise<T> {
    parseSha256(sha256);
    const release = this.hold(sha256);
    try {
      await this.fetch(sha256);
      return await this.cache.withLocalFile(sha256, fn);
    } finally {
      await release();
    }
  }

  /** Keep a cached blob from eviction until the returned function is called (once; then evict what is over). */
  private hold(sha256: Sha256): () => Promise<void> {
    this.inUse.set(sha256, (this.inUse.get(sha256) ?? 0) + 1);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      const n = (this.inUse.get(sha256) ?? 1) - 1;
      if (n === 0) this.inUse.delete(sha256);
      else this.inUse.set(sha256, n);
      await this.evict();
    };
  }

  async *list(): AsyncGenerator<Sha256> {
    for await (const o of this.objects()) yield o.sha256;
  }

  private async *objects(): AsyncGenerator<{ sha256: Sha256; lastModified: number }> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3(() =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: this.prefix, ContinuationToken })),
      );
      for (const o of page.Contents ?? []) {
        const m = /^[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(o.Key?.slice(this.prefix.length) ?? '');
        if (m) yield { sha256: m[1] as Sha256, lastModified: o.LastModified?.getTime() ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async remove(sha256: Sha256): Promise<void> {
    await this.s3(() =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: this.keyOf(parseSha256(sha256)) })),
    );
    await this.forget(sha256);
  }

  async collect(referenced: ReadonlySet<string>, now: number, graceMs: number): Promise<Sha256[]> {
    const removed: Sha256[] = [];
    for await (const o of this.objects()) {
      if (referenced.has(o.sha256)) continue;
      const head = await this.s3(() =>
        this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.keyOf(o.sha256) })),
      ).catch(() => null);
      const storedAt = Number(head?.Metadata?.[STORED_AT] ?? o.lastModified);
      if (!head || now - storedAt < graceMs) continue;
      await this.s3(() =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: this.keyOf(o.sha256) })),
      );
      await this.forget(o.sha256);
      removed.push(o.sha256);
    }
    return removed;
  }

  /**
   * Abort multipart uploads under our prefix left unfinished for an hour (a crash mid-upload; younger ones may
   * be another server's, in progress) and empty this server's cache.
   */
  async clearTmp(): Promise<void> {
    for (const u of await this.partialUploads()) {
      if (Date.now() - u.initiated < 3_600_000) continue;
      await this.s3(() =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: u.key, UploadId: u.id })),
      );
    }
    await rm(this.cacheDir, { recursive: true, force: true });
    this.cached.clear();
    this.cachedBytes = 0;
    await this.cache.init();
  }

  /** Unfinished multipart uploads under our prefix. */
  async partialUploads(): Promise<{ key: string; id: string; initiated: number }[]> {
    const r = await this.s3(() =>
      this.client.send(new ListMultipartUploadsCommand({ Bucket: this.cfg.bucket, Prefix: this.prefix })),
    );
    return (r.Uploads ?? []).map((u) => ({
      key: u.Key ?? '',
      id: u.UploadId ?? '',
      initiated: u.Initiated?.getTime() ?? 0,
    }));
  }

  close(): void {
    this.client.destroy();
  }

  private remember(sha256: string, size: number): void {
    if (!this.cached.has(sha256)) this.cachedBytes += size;
    this.cached.delete(sha256);
    this.cached.set(sha256, size);
  }

  private async forget(sha256: Sha256): Promise<void> {
    const size = this.cached.get(sha256);
    if (size === undefined) return;
    this.cached.delete(sha256);
    this.cachedBytes -= size;
    await this.cache.remove(sha256);
  }

  /** Drop least recently used cache entries not in use until the cache fits. */
  private async evict(): Promise<void> {
    for (const sha of [...this.cached.keys()]) {
      if (this.cachedBytes <= this.cacheBytes) return;
      if (!this.inUse.has(sha)) await this.forget(sha as Sha256);
    }
  }

  /** A call to the service; failures other than the caller's expected ones become BLOB_STORE_UNAVAILABLE. */
  private async s3<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isNotFound(err) || isPreconditionFailed(err) || err instanceof LenixError) throw err;
      if (/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(nameOf(err))) throw err;
      throw new LenixError('BLOB_STORE_UNAVAILABLE', `object store: ${nameOf(err)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

const nameOf = (err: unknown) => (err instanceof Error ? err.name : String(err));
const statusOf = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode ?? 0;
const isNotFound = (err: unknown) => statusOf(err) === 404 || /NotFound|NoSuchKey|NoSuchBucket/.test(nameOf(err));
const isPreconditionFailed = (err: unknown) => statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed';
const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('base64');

async function readRange(file: string, at: number, length: number): Promise<Buffer> {
  const h = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await h.read(buf, got, length - got, at + got);
      if (bytesRead === 0) throw new LenixError('INTERNAL', `${file} is shorter than expected`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await h.close();
  }
}
