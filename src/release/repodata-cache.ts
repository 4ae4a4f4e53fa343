import { open, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { METADATA_KINDS, type MetadataKind } from '../rpm/package-metadata.js';

/**
 * What a snapshot's metadata writer leaves for the next one (ARCH/.cache/, never served, never fsynced): each
 * document also as plain XML, and where each package's entry lies in the plain file and in the published
 * .xml.gz. The next publish copies unchanged entries from these files in runs (sequential reads from the page
 * cache) instead of reading every entry from the database, and fetches only what changed.
 *
 * The plain files are not synced to disk, so the index records the boot it was written in: after a reboot
 * (when unsynced data may be lost) it is not trusted, and that publish reads the database instead.
 */
export const CACHE_DIR = '.cache';

const Head = z.object({
  version: z.literal(2),
  bootId: z.string(),
  /** Each kind's published file name under repodata/. */
  files: z.record(z.enum(METADATA_KINDS), z.string().regex(/^[0-9a-f]{64}-[a-z]+\.xml\.gz$/)),
  count: z.number().int().nonnegative(),
});

/**
 * index.json (the head), keys.txt (`sha256/file` of each entry in file order, one a line) and offsets.bin
 * (float64: per kind the offset of each entry in the .xml.gz, then in the plain file, each with the end after
 * the last entry), written in that order and renamed into place last to first.
 */
export interface CacheIndex {
  readonly files: Readonly<Record<MetadataKind, string>>;
  readonly keys: readonly string[];
  readonly gz: Readonly<Record<MetadataKind, ArrayLike<number>>>;
  readonly plain: Readonly<Record<MetadataKind, ArrayLike<number>>>;
}

let bootIdCache: string | null = null;
async function bootId(): Promise<string> {
  bootIdCache ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  return bootIdCache;
}

/** A previous snapshot's cache, or null when there is none or it cannot be trusted. */
export async function readCache(archDir: string): Promise<(CacheIndex & { dir: string }) | null> {
  const dir = path.join(archDir, CACHE_DIR);
  const text = await readFile(path.join(dir, 'index.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  const head = Head.safeParse(JSON.parse(text));
  if (!head.success || head.data.bootId !== (await bootId()) || head.data.bootId === 'unknown') return null;
  const n = head.data.count;
  const keysText = await readFile(path.join(dir, 'keys.txt'), 'utf8').catch(() => null);
  const keys = keysText === null || n === 0 ? [] : keysText.split('\n');
  const raw = await readFile(path.join(dir, 'offsets.bin')).catch(() => null);
  if (keys.length !== n || raw?.length !== 6 * (n + 1) * 8) return null;
  const all = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const part = (k: number) => all.subarray(k * (n + 1), (k + 1) * (n + 1));
  const [gp, gf, go, pp, pf, po] = [0, 1, 2, 3, 4, 5].map(part) as Float64Array[];
  return {
    dir: archDir,
    files: head.data.files as Record<MetadataKind, string>,
    keys,
    gz: { primary: gp!, filelists: gf!, other: go! },
    plain: { primary: pp!, filelists: pf!, other: po! },
  };
}

export async function writeCacheIndex(archDir: string, index: CacheIndex): Promise<void> {
  const dir = path.join(archDir, CACHE_DIR);
  const n = index.keys.length;
  const all = new Float64Array(6 * (n + 1));
  const columns = [...METADATA_KINDS.map((k) => index.gz[k]), ...METADATA_KINDS.map((k) => index.plain[k])];
  for (const [c, column] of columns.entries()) all.set(Array.from(column), c * (n + 1));
  const head = { version: 2, bootId: await bootId(), files: index.files, count: n };
  for (const [name, data] of [
    ['offsets.bin', Buffer.from(all.buffer)],
    ['keys.txt', index.keys.join('\n')],
    ['index.json', JSON.stringify(head)],
  ] as const) {
    await writeFile(path.join(dir, `${name}.tmp`), data);
    await rename(path.join(dir, `${name}.tmp`), path.join(dir, name));
  }
}

export const plainFile = (archDir: string, kind: MetadataKind) => path.join(archDir, CACHE_DIR, `${kind}.xml`);

/** Read [from, to) of a file in pieces of at most `piece` bytes. */
export async function* readRange(
  file: string,
  from: number,
  to: number,
  piece = 4 * 1024 * 1024,
): AsyncGenerator<Buffer> {
  const h = await open(file, 'r');
  try {
    for (let at = from; at < to; ) {
      const want = Math.min(piece, to - at);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await h.read(buf, 0, want, at);
      if (bytesRead !== want) throw new Error(`${file} is shorter than its index says`);
      yield buf;
      at += want;
    }
  } finally {
    await h.close();
  }
}
