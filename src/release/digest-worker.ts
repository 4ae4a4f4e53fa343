import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { DigestJob, DigestReply } from './digest-pool.js';

/**
 * The worker half of digest-pool.ts: for each job, the SHA-256 and length of its segments in order (ranges of
 * files and bytes given inline), written to `out` (created, then synced) when it names a file. One buffer is
 * reused for every read, so a job streams through the page cache without allocating.
 */
const PIECE = 1 << 20;
const buffer = Buffer.allocUnsafe(PIECE);
const port = parentPort!;

function run(job: DigestJob): { sha256: string; size: number } {
  const hash = createHash('sha256');
  const out = job.out === null ? null : openSync(job.out, 'w', 0o644);
  let size = 0;
  const take = (bytes: Uint8Array) => {
    hash.update(bytes);
    size += bytes.length;
    for (let at = 0; out !== null && at < bytes.length; ) at += writeSync(out, bytes, at);
  };
  try {
    for (const s of job.segments) {
      if ('bytes' in s) {
        take(s.bytes);
        continue;
      }
      const fd = openSync(s.file, 'r');
      try {
        for (let at = s.from; at < s.to; ) {
          const n = readSync(fd, buffer, 0, Math.min(PIECE, s.to - at), at);
          if (n === 0) throw new Error(`${s.file} is shorter than its index says`);
          take(buffer.subarray(0, n));
          at += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    if (out !== null) fsyncSync(out);
  } finally {
    if (out !== null) closeSync(out);
  }
  return { sha256: hash.digest('hex'), size };
}

port.on('message', (m: { id: number; job: DigestJob }) => {
  let reply: DigestReply;
  try {
    reply = { id: m.id, ...run(m.job) };
  } catch (err) {
    reply = { id: m.id, error: (err as Error).message };
  }
  port.postMessage(reply);
});
