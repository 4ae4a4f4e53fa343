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

const Index = z.object({
  version: z.literal(1),
  bootId: z.string(),
  /** Each kind's published file name under repodata/. */
  files: z.record(z.enum(METADATA_KINDS), z.string()),
  /** `sha256/file` of each entry, in file order. */
  keys: z.array(z.string()),
  /** Per kind: offsets of each entry in the .xml.gz and in the plain file, with the end after the last. */
  gz: z.record(z.enum(METADATA_KINDS), z.array(z.number().int().nonnegative())),
  plain: z.record(z.enum(METADATA_KINDS), z.array(z.number().int().nonnegative())),
});
export type CacheIndex = z.infer<typeof Index>;

let bootIdCache: string | null = null;
async function bootId(): Promise<string> {
  bootIdCache ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  return bootIdCache;
}

/** A previous snapshot's cache, or null when there is none or it cannot be trusted. */
export async function readCache(archDir: string): Promise<(CacheIndex & { dir: string }) | null> {
  const text = await readFile(path.join(archDir, CACHE_DIR, 'index.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  const parsed = Index.safeParse(JSON.parse(text));
  if (!parsed.success || parsed.data.bootId !== (await bootId()) || parsed.data.bootId === 'unknown') return null;
  const n = parsed.data.keys.length;
  for (const kind of METADATA_KINDS)
    if (parsed.data.gz[kind]?.length !== n + 1 || parsed.data.plain[kind]?.length !== n + 1) return null;
  return { ...parsed.data, dir: archDir };
}

export async function writeCacheIndex(archDir: string, index: Omit<CacheIndex, 'version' | 'bootId'>): Promise<void> {
  const file = path.join(archDir, CACHE_DIR, 'index.json');
  await writeFile(`${file}.tmp`, JSON.stringify({ version: 1, bootId: await bootId(), ...index }));
  await rename(`${file}.tmp`, file);
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
