import { createWriteStream } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, create } from 'tar';
import { LenixError } from '../core/errors.js';

/**
 * Stream a host folder that the agent filled itself into the sandbox as a tar on its stdin. The folder holds
 * no link from package content (source archives travel as one file, unpacked inside the sandbox).
 */
export async function createSandboxInput(dir: string, stdin: Writable): Promise<void> {
  await pipeline(create({ cwd: dir, portable: true, follow: false }, ['.']) as unknown as Readable, stdin);
}

/** Plain file names only: no path, no dot files, no control characters. */
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._+~^-]{0,254}$/;

/**
 * Read the sandbox's output tar and write its regular files, flat, into `to` (a fresh folder of the agent's).
 * Links, devices, folders and names that `accept` refuses are skipped; a repeated name, more than `maxBytes`
 * in all or more than MAX_OUTPUT_ENTRIES entries is refused, and the stream is not read further. Files are created exclusively, so nothing already there is followed or replaced.
 */
export async function readSandboxOutput(
  stream: Readable,
  to: string,
  accept: (name: string) => boolean,
  maxBytes: number,
): Promise<string[]> {
  const written: string[] = [];
  const writes: Promise<void>[] = [];
  let total = 0;
  let entries = 0;
  let received = 0;
  let refused: LenixError | null = null;
  // Package code chooses what the stream holds (sparse files far larger than the disk limit, millions of
  // entries): past a bound, stop reading at once rather than drain it.
  const refuse = (why: string) => {
    refused ??= new LenixError('BAD_REQUEST', why);
    stream.destroy();
  };
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      if (++entries > MAX_OUTPUT_ENTRIES) refuse(`the sandbox's outputs hold more than ${MAX_OUTPUT_ENTRIES} entries`);
      const name = path.posix.basename(entry.path);
      if ((entry.type !== 'File' && entry.type !== 'OldFile') || !PLAIN.test(name) || !accept(name) || refused) {
        entry.resume();
        return;
      }
      total += entry.size;
      if (total > maxBytes) refuse(`the sandbox's outputs exceed ${maxBytes} bytes`);
      else if (written.includes(name)) refuse(`the sandbox produced ${name} twice`);
      if (refused) {
        entry.resume();
        return;
      }
      written.push(name);
      writes.push(
        pipeline(entry as unknown as Readable, createWriteStream(path.join(to, name), { flags: 'wx', mode: 0o644 })),
      );
    },
  });
  stream.on('data', (c: Buffer) => {
    received += c.length;
    if (received > maxBytes + 64 * 1024 * 1024) refuse(`the sandbox's output stream passed ${maxBytes} bytes`);
  });
  try {
    await pipeline(stream, parser as unknown as Writable);
  } catch (err) {
    if (refused) throw refused;
    // Nothing written to the channel (the run failed, or had no output folder) is no output, not a bad archive.
    if (received === 0) return [];
    throw err;
  }
  await Promise.allSettled(writes);
  if (refused) throw refused;
  await Promise.all(writes);
  return written.sort();
}

/** Entries in an output stream (packages, folders, whatever else the build left there) before it is refused. */
const MAX_OUTPUT_ENTRIES = 10_000;
