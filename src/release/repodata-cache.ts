import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { bootId } from '../store/durable.js';
import { METADATA_KINDS, type MetadataKind } from '../rpm/package-metadata.js';

/**
 * What a snapshot's metadata writer leaves for the next one, so that a publish copies unchanged entries in runs
 * (sequential reads from the page cache) and fetches only what changed from the database:
 *
 * - the plain text of every entry, in an append-only log per arch and kind (REPO/.plain/ARCH/GEN-KIND.log): a
 *   publish appends only its new entries; when less than half of a log is still in use, the next publish starts
 *   a new generation with the live entries (and generations no snapshot cache names are removed);
 * - per snapshot (ARCH/.cache/): the entries' keys in file order, where each lies in the published .xml.gz and
 *   in the log.
 *
 * None of it is served or fsynced (it is a cache): the index records the boot it was written in, and after a
 * reboot (when unsynced data may be lost) it is not trusted and that publish reads the database instead.
 */
export const CACHE_DIR = '.cache';
export const LOG_DIR = '.plain';

const Head = z.object({
  version: z.literal(3),
  bootId: z.string(),
  /** The log generation the plain offsets point into. */
  gen: z.string().regex(/^[0-9a-f]{16}$/),
  /** Each kind's published file name under repodata/. */
  files: z.record(z.enum(METADATA_KINDS), z.string().regex(/^[0-9a-f]{64}-[a-z]+\.xml\.gz$/)),
  count: z.number().int().nonnegative(),
});

export interface CacheIndex {
  readonly gen: string;
  readonly files: Readonly<Record<MetadataKind, string>>;
  readonly keys: readonly string[];
  /** Per kind: each entry's offset in the .xml.gz, with the end after the last entry (count + 1 values). */
  readonly gz: Readonly<Record<MetadataKind, ArrayLike<number>>>;
  /** Per kind: each entry's offset and length in the generation's log. */
  readonly at: Readonly<Record<MetadataKind, ArrayLike<number>>>;
  readonly len: Readonly<Record<MetadataKind, ArrayLike<number>>>;
}

/**
 * Indexes this process wrote, by their index.json text (it names the log generation and the published files by
 * digest, so equal text means the same entries): the next publish reuses the arrays instead of reading them.
 */
const written = new Map<string, CacheIndex>();

/** A previous snapshot's cache, or null when there is none or it cannot be trusted. */
export async function readCache(archDir: string): Promise<(CacheIndex & { dir: string }) | null> {
  const dir = path.join(archDir, CACHE_DIR);
  const text = await readFile(path.join(dir, 'index.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  const head = Head.safeParse(JSON.parse(text));
  if (!head.success || head.data.bootId !== (await bootId()) || head.data.bootId === 'unknown') return null;
  const mine = written.get(text);
  if (mine) return { ...mine, dir: archDir };
  const n = head.data.count;
  const keysText = await readFile(path.join(dir, 'keys.txt'), 'utf8').catch(() => null);
  const keys = keysText === null || n === 0 ? [] : keysText.split('\n');
  const raw = await readFile(path.join(dir, 'offsets.bin')).catch(() => null);
  if (keys.length !== n || raw?.length !== 3 * (3 * n + 1) * 8) return null;
  const all = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  let at = 0;
  const take = (count: number) => {
    const part = all.subarray(at, at + count);
    at += count;
    return part;
  };
  const gz = {} as Record<MetadataKind, Float64Array>;
  const starts = {} as Record<MetadataKind, Float64Array>;
  const lens = {} as Record<MetadataKind, Float64Array>;
  for (const kind of METADATA_KINDS) {
    gz[kind] = take(n + 1);
    starts[kind] = take(n);
    lens[kind] = take(n);
  }
  return {
    dir: archDir,
    gen: head.data.gen,
    files: head.data.files as Record<MetadataKind, string>,
    keys,
    gz,
    at: starts,
    len: lens,
  };
}

/**
 * Write a snapshot's cache in two steps: `writeCacheEntries` (the large part, while its files are still being
 * written) then `writeCacheHead` (once their names are known), which makes it valid.
 */
export async function writeCacheEntries(archDir: string, index: Omit<CacheIndex, 'gen' | 'files'>): Promise<void> {
  const dir = path.join(archDir, CACHE_DIR);
  await mkdir(dir, { recursive: true });
  const n = index.keys.length;
  const all = new Float64Array(3 * (3 * n + 1));
  let at = 0;
  for (const kind of METADATA_KINDS)
    for (const column of [index.gz[kind], index.at[kind], index.len[kind]]) {
      all.set(column, at);
      at += column.length;
    }
  for (const [name, data] of [
    ['offsets.bin', Buffer.from(all.buffer)],
    ['keys.txt', index.keys.join('\n')],
  ] as const)
    await replaceFile(path.join(dir, name), data);
}

export async function writeCacheHead(archDir: string, index: CacheIndex): Promise<void> {
  const head = { version: 3, bootId: await bootId(), gen: index.gen, files: index.files, count: index.keys.length };
  const text = JSON.stringify(head);
  await replaceFile(path.join(archDir, CACHE_DIR, 'index.json'), text);
  written.set(text, index);
  if (written.size > 4) written.delete(written.keys().next().value!);
}

async function replaceFile(file: string, data: string | Uint8Array): Promise<void> {
  await writeFile(`${file}.tmp`, data);
  await rename(`${file}.tmp`, file);
}

/** The append-only plain logs of one arch, one generation: read anywhere, append at the end. */
export class PlainLogs {
  private constructor(
    readonly dir: string,
    readonly gen: string,
    private readonly handles: Record<MetadataKind, FileHandle>,
    private readonly sizes: Record<MetadataKind, number>,
  ) {}

  static newGeneration(): string {
    return randomBytes(8).toString('hex');
  }

  static async open(dir: string, gen: string): Promise<PlainLogs> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handles = {} as Record<MetadataKind, FileHandle>;
    const sizes = {} as Record<MetadataKind, number>;
    for (const kind of METADATA_KINDS) {
      handles[kind] = await open(path.join(dir, `${gen}-${kind}.log`), 'a+', 0o600);
      sizes[kind] = (await handles[kind].stat()).size; // past anything a crashed publish left half-written
    }
    return new PlainLogs(dir, gen, handles, sizes);
  }

  /** The log file of a kind (read by digest workers up to `size`). */
  file(kind: MetadataKind): string {
    return path.join(this.dir, `${this.gen}-${kind}.log`);
  }

  size(kind: MetadataKind): number {
    return this.sizes[kind];
  }

  /** Append these pieces in order, returning where the first starts. */
  async append(kind: MetadataKind, pieces: readonly Uint8Array[]): Promise<number> {
    const at = this.sizes[kind];
    for (let i = 0; i < pieces.length; i += 512) {
      const part = pieces.slice(i, i + 512);
      const want = part.reduce((sum, p) => sum + p.length, 0);
      const { bytesWritten } = await this.handles[kind].writev(part);
      if (bytesWritten !== want) throw new Error(`plain log ${kind}: ${bytesWritten} of ${want} bytes written`);
      this.sizes[kind] += want;
    }
    return at;
  }

  /**
   * Count `length` more bytes as the log's, returning where they start: the caller writes them there (a digest
   * stream's `tee`) before anything reads that range.
   */
  reserve(kind: MetadataKind, length: number): number {
    const at = this.sizes[kind];
    this.sizes[kind] += length;
    return at;
  }

  /** [from, from + length) of a log, in pieces of at most 4 MiB. */
  read(kind: MetadataKind, from: number, length: number): AsyncGenerator<Buffer> {
    return readPieces(this.handles[kind], from, from + length, `plain log ${kind}`);
  }

  async close(): Promise<void> {
    for (const kind of METADATA_KINDS) await this.handles[kind].close();
  }

  /** Remove generations other than these. */
  static async prune(dir: string, keep: ReadonlySet<string>): Promise<void> {
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const gen = /^([0-9a-f]{16})-[a-z]+\.log$/.exec(f)?.[1];
      if (gen && !keep.has(gen)) await rm(path.join(dir, f), { force: true });
    }
  }
}

/** Read [from, to) of a file in pieces of at most 4 MiB. */
export async function* readRange(file: string, from: number, to: number): AsyncGenerator<Buffer> {
  const h = await open(file, 'r');
  try {
    yield* readPieces(h, from, to, file);
  } finally {
    await h.close();
  }
}

async function* readPieces(h: FileHandle, from: number, to: number, what: string): AsyncGenerator<Buffer> {
  for (let at = from; at < to; ) {
    const want = Math.min(4 * 1024 * 1024, to - at);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await h.read(buf, 0, want, at);
    if (bytesRead !== want) throw new Error(`${what} is shorter than its index says`);
    yield buf;
    at += want;
  }
}
