import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

/** SHA-256 of a file, streamed (lowercase hex). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

let bootIdCache: string | null = null;
/**
 * This boot of the machine (Linux's boot_id; `unknown` where there is none): data written but not synced
 * is only known intact while it is the same.
 */
export async function bootId(): Promise<string> {
  bootIdCache ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  return bootIdCache;
}

/** fsync a folder, so that a rename or new file in it survives a crash (POSIX: the entry lives in the folder). */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Write a file and fsync it before returning. */
export async function writeDurably(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const h = await open(file, 'w', mode);
  try {
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * A 32-byte secret seed kept in a file (base64, mode 0600), created and fsynced on first use. Only a missing
 * file makes a new one; no other failure may silently replace a key's identity.
 */
export async function readOrCreateSeed(file: string): Promise<Uint8Array> {
  try {
    const seed = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    if (seed.length !== 32) throw new Error(`${file} does not hold a 32-byte seed`);
    return new Uint8Array(seed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const seed = randomBytes(32);
    await writeDurably(file, `${seed.toString('base64')}\n`, 0o600);
    return new Uint8Array(seed);
  }
}

/**
 * fsync every file and folder under `dir` (folders named `skip` left out) before it becomes visible: a folder's
 * entries up to 64 at a time (the file system can commit them together), the folder itself after them.
 */
export async function syncTree(dir: string, skip?: string): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !(e.isDirectory() && e.name === skip));
  const syncOne = async (e: (typeof entries)[number]) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return syncTree(p, skip);
    const h = await open(p, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  };
  for (let i = 0; i < entries.length; i += 64) await Promise.all(entries.slice(i, i + 64).map(syncOne));
  await fsyncDir(dir);
}
