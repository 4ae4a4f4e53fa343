import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { LenixError } from '../core/errors.js';
import { parseSha256, type Sha256 } from '../core/ids.js';
import { fsyncDir, sha256File } from './durable.js';

/**
 * The port: content-addressed bytes. Every user (the agents' uploads, the publisher, fsck, the ledger's
 * manifests, blob GC) goes through it, so a second backend (an S3-compatible object store) drops in behind
 * the same shared suite (test/support/blob-store-suite.ts). Implementations: the folder store below, and an
 * S3-compatible object store (s3-blob-store.ts).
 */
export interface BlobStore {
  /**
   * Other servers read this store too (S3): what one server publishes must be in it for the others to serve;
   * a folder store is one machine's.
   */
  readonly shared: boolean;
  /** Ready the store (folders, buckets); idempotent. */
  init(): Promise<void>;
  /** Store bytes; when `expected` is given and the bytes hash otherwise, nothing is stored (DIGEST_MISMATCH). */
  put(
    body: AsyncIterable<Uint8Array> | Uint8Array,
    opts?: { expected?: Sha256; maxBytes?: number },
  ): Promise<{ sha256: Sha256; size: number }>;
  /** A verified read: the blob is hashed before any byte is handed out; a corrupt blob is never served. */
  open(sha256: Sha256): Promise<{ size: number; stream: Readable }>;
  /** A verified read of a whole (small) blob. */
  readAll(sha256: Sha256): Promise<Buffer>;
  has(sha256: Sha256): Promise<boolean>;
  /** Check that a stored blob still hashes to its name; returns its size (ARTIFACT_NOT_FOUND, BLOB_CORRUPT). */
  verify(sha256: Sha256): Promise<number>;
  /**
   * Run `fn` on a local file holding the blob (the stored file itself here, a downloaded copy in a remote
   * store), valid only until `fn` settles. Not re-hashed: a caller that hands the bytes on checks the digest
   * as it copies them (the publisher's and fsck's copies do); `fn` must not write to the file.
   */
  withLocalFile<T>(sha256: Sha256, fn: (file: string) => Promise<T>): Promise<T>;
  /** Every stored blob's digest. */
  list(): AsyncIterable<Sha256>;
  /** Remove one blob at once (retention pruned what referenced it; a cache's eviction). */
  remove(sha256: Sha256): Promise<void>;
  /** Remove unreferenced blobs older than `graceMs`; returns the digests removed. */
  collect(referenced: ReadonlySet<string>, now: number, graceMs: number): Promise<Sha256[]>;
  /** Drop partial writes a crash left behind. */
  clearTmp(): Promise<void>;
}

/**
 * Blobs at ROOT/ab/cdef… (first two hex digits as a fan-out folder). Writes go to ROOT/tmp, are fsynced,
 * renamed into place and the folder fsynced: a blob is either whole under its name or absent.
 */
export class FsBlobStore implements BlobStore {
  readonly shared = false;
  /** Blobs whose bytes were hashed, with the file identity they had then (see open). */
  private readonly verified = new Map<string, string>();

  constructor(private readonly root: string) {}

  private pathOf(sha256: Sha256): string {
    return path.join(this.root, sha256.slice(0, 2), sha256.slice(2));
  }

  async withLocalFile<T>(sha256: Sha256, fn: (file: string) => Promise<T>): Promise<T> {
    parseSha256(sha256);
    const file = this.pathOf(sha256);
    if (!(await stat(file).catch(() => null))) throw new LenixError('ARTIFACT_NOT_FOUND', `no blob ${sha256}`);
    return fn(file);
  }

  async init(): Promise<void> {
    await mkdir(path.join(this.root, 'tmp'), { recursive: true, mode: 0o700 });
  }

  async put(
    body: AsyncIterable<Uint8Array> | Uint8Array,
    opts: { expected?: Sha256; maxBytes?: number } = {},
  ): Promise<{ sha256: Sha256; size: number }> {
    await this.init();
    const tmp = path.join(this.root, 'tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
    const handle = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let ok = false;
    try {
      const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = body instanceof Uint8Array ? [body] : body;
      for await (const chunk of chunks) {
        size += chunk.length;
        if (opts.maxBytes !== undefined && size > opts.maxBytes) {
          throw new LenixError('BODY_TOO_LARGE', `upload exceeds the limit of ${opts.maxBytes} bytes`);
        }
        hash.update(chunk);
        await handle.write(chunk);
      }
      await handle.sync();
      await handle.close();
      const sha256 = hash.digest('hex') as Sha256;
      if (opts.expected !== undefined && opts.expected !== sha256) {
        throw new LenixError('DIGEST_MISMATCH', `declared sha256 ${opts.expected} but the bytes hash to ${sha256}`);
      }
      const final = this.pathOf(sha256);
      await mkdir(path.dirname(final), { recursive: true });
      await rename(tmp, final);
      await fsyncDir(path.dirname(final));
      ok = true;
      return { sha256, size };
    } finally {
      if (!ok) {
        await handle.close().catch(() => undefined);
        await unlink(tmp).catch(() => undefined);
      }
    }
  }

  async has(sha256: Sha256): Promise<boolean> {
    return stat(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  /** Every stored blob's digest (the fan-out folders walked; temporary files left out). */
  async *list(): AsyncGenerator<Sha256> {
    const shards = await readdir(this.root).catch(() => [] as string[]);
    for (const shard of shards.filter((d) => /^[0-9a-f]{2}$/.test(d)).sort()) {
      for (const rest of (await readdir(path.join(this.root, shard))).sort()) {
        if (/^[0-9a-f]{62}$/.test(rest)) yield `${shard}${rest}` as Sha256;
      }
    }
  }

  /** Check that a stored blob still hashes to its name; returns its size. */
  async verify(sha256: Sha256): Promise<number> {
    parseSha256(sha256);
    const file = this.pathOf(sha256);
    const st = await stat(file).catch(() => null);
    if (!st) throw new LenixError('ARTIFACT_NOT_FOUND', `no blob ${sha256}`);
    if ((await sha256File(file)) !== sha256)
      throw new LenixError('BLOB_CORRUPT', `blob ${sha256} does not match its digest`);
    return st.size;
  }

  /**
   * A verified read. A blob hashed once is not hashed again while its file is the same one, unchanged (same
   * inode, size, mtime and ctime): serving a package a thousand times costs one hash, and a file rewritten in
   * place is hashed again before any byte of it is served.
   */
  async open(sha256: Sha256): Promise<{ size: number; stream: Readable }> {
    parseSha256(sha256);
    const file = this.pathOf(sha256);
    const st = await stat(file).catch(() => null);
    if (!st) throw new LenixError('ARTIFACT_NOT_FOUND', `no blob ${sha256}`);
    const seen = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    if (this.verified.get(sha256) !== seen) {
      this.verified.delete(sha256);
      if ((await sha256File(file)) !== sha256)
        throw new LenixError('BLOB_CORRUPT', `blob ${sha256} does not match its digest`);
      if (this.verified.size >= 100_000) this.verified.clear();
      this.verified.set(sha256, seen);
    }
    return { size: st.size, stream: createReadStream(file) };
  }

  async readAll(sha256: Sha256): Promise<Buffer> {
    const { stream } = await this.open(sha256);
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  /**
   * Remove blobs that no record references and that are older than `graceMs` (an upload is written before it
   * is recorded: the grace period keeps it while its record is being made). Returns the digests removed.
   */
  async collect(referenced: ReadonlySet<string>, now: number, graceMs: number): Promise<Sha256[]> {
    const removed: Sha256[] = [];
    for await (const sha of this.list()) {
      if (referenced.has(sha)) continue;
      const st = await stat(this.pathOf(sha)).catch(() => null);
      if (!st || now - st.mtimeMs < graceMs) continue;
      await unlink(this.pathOf(sha)).catch(() => undefined);
      removed.push(sha);
    }
    return removed;
  }

  /** Remove one blob (a cache's eviction; the collector decides for the store itself). */
  async remove(sha256: Sha256): Promise<void> {
    parseSha256(sha256);
    this.verified.delete(sha256);
    await unlink(this.pathOf(sha256)).catch(() => undefined);
  }

  async clearTmp(): Promise<void> {
    await rm(path.join(this.root, 'tmp'), { recursive: true, force: true });
    await this.init();
  }
}
