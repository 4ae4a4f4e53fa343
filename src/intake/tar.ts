import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser } from 'tar';
import { LenixError } from '../core/errors.js';

/** What an agent needs to know of a source archive without unpacking it on the host. */
export interface ArchiveIndex {
  /** Regular files, as paths relative to the tree. */
  readonly files: readonly string[];
  readonly symlinks: ReadonlySet<string>;
  /** Contents of the small files `want` asked for. */
  readonly contents: ReadonlyMap<string, string>;
}

/**
 * Read a source archive's table of contents (and a few small files) from the stream, writing nothing. The
 * archive is unpacked only inside a sandbox; outside, its paths are names, never places to open.
 */
export async function indexTar(
  input: Readable,
  want: (file: string) => boolean,
  maxContentBytes = 1024 * 1024,
): Promise<ArchiveIndex> {
  const files: string[] = [];
  const symlinks = new Set<string>();
  const contents = new Map<string, string>();
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      const name = entry.path.replace(/^\.\//, '').replace(/\/$/, '');
      if (entry.type === 'SymbolicLink') symlinks.add(name);
      if (entry.type !== 'File' && entry.type !== 'OldFile') {
        entry.resume();
        return;
      }
      files.push(name);
      if (!want(name) || entry.size > maxContentBytes) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => contents.set(name, Buffer.concat(chunks).toString('utf8')));
    },
  });
  try {
    await pipeline(input, parser as unknown as Writable);
  } catch (err) {
    throw new LenixError('GIT_FAILED', `the source archive is not a readable tar: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { files, symlinks, contents };
}
