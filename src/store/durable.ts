import { open } from 'node:fs/promises';

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
