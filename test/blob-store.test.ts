import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../src/store/blob-store.js';
import { blobStoreSuite } from './support/blob-store-suite.js';

/** The folder backend: blobs at ROOT/ab/cdef…, partial writes under ROOT/tmp. */
blobStoreSuite('folder', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-blobs-'));
  const file = (sha: string) => path.join(dir, sha.slice(0, 2), sha.slice(2));
  return {
    store: new FsBlobStore(dir),
    corrupt: (sha, bytes) => writeFile(file(sha), bytes),
    partials: () => readdir(path.join(dir, 'tmp')),
    age: async (sha, ageMs) => {
      const t = new Date(Date.now() - ageMs);
      await utimes(file(sha), t, t);
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
});
