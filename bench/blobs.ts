/**
 * Blob store throughput (issue 16): put and verified read of the same files through the folder store and the
 * S3 store (Ceph radosgw on a one-host memstore cluster, test/support/ceph.ts), side by side in one run, MB/s.
 * The S3 read is measured cold (a fresh cache: download, hash, then serve) and warm (from the local cache).
 *
 *   npm run build && node dist/bench/blobs.js [--mib 64] [--files 4]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Sha256 } from '../src/core/ids.js';
import { type BlobStore, FsBlobStore } from '../src/store/blob-store.js';
import { S3BlobStore } from '../src/store/s3-blob-store.js';
import { startRadosgw } from '../test/support/ceph.js';

const { values: args } = parseArgs({
  options: { mib: { type: 'string', default: '64' }, files: { type: 'string', default: '4' } },
});
const MIB = Number(args.mib);
const files = Array.from({ length: Number(args.files) }, () => randomBytes(MIB * 1024 * 1024));
const total = (MIB * files.length * 1024 * 1024) / 1e6;

async function drain(store: BlobStore, sha: Sha256): Promise<void> {
  const { stream } = await store.open(sha);
  for await (const _ of stream);
}

async function measure(name: string, make: () => BlobStore, fresh?: () => BlobStore) {
  const store = make();
  await store.init();
  let t = performance.now();
  const shas: Sha256[] = [];
  for (const f of files) shas.push((await store.put(f)).sha256);
  const put = total / ((performance.now() - t) / 1000);
  let cold: number | null = null;
  if (fresh) {
    const other = fresh();
    t = performance.now();
    for (const s of shas) await drain(other, s);
    cold = total / ((performance.now() - t) / 1000);
  }
  t = performance.now();
  for (const s of shas) await drain(store, s);
  const warm = total / ((performance.now() - t) / 1000);
  return `| ${name} | ${put.toFixed(0)} | ${cold === null ? '–' : cold.toFixed(0)} | ${warm.toFixed(0)} |`;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-blobs-'));
const s3 = await startRadosgw();
try {
  const cfg = {
    endpoint: s3.endpoint,
    bucket: 'bench',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  };
  const rows = [
    await measure('folder (DATA/blobs)', () => new FsBlobStore(path.join(dir, 'fs'))),
    await measure(
      'S3 (radosgw, memstore)',
      () => new S3BlobStore(cfg, path.join(dir, 'cache-a')),
      () => new S3BlobStore(cfg, path.join(dir, 'cache-b')),
    ),
  ];
  console.log(
    `\nBlob stores: ${files.length} files of ${MIB} MiB (${os.cpus().length} cores, Node ${process.version})\n`,
  );
  console.log('| store | put MB/s | read MB/s, another server (cold) | read MB/s (warm) |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
} finally {
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
