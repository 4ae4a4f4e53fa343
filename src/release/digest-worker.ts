import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import type { DigestJob, DigestMessage, DigestReply, DigestSegment } from './digest-pool.js';

/**
 * The worker half of digest-pool.ts: for each open stream, the SHA-256 and length of its bytes in order (ranges
 * of files and bytes given inline, then bytes pushed), written to `out` when the job names a file (created, not
 * synced: the publisher syncs the snapshot's folder before it goes live), and pushed bytes (and segments marked `tee`) also to `tee` (an
 * inflating stream's pushed members are inflated first: what they inflate to is the stream's). One
 * buffer is reused for every read, so a stream goes through the page cache without allocating. Messages are
 * handled one at a time, in the order sent; pushed bytes arrive in shared slices, each given back once read.
 */
const PIECE = 1 << 20;
const buffer = Buffer.allocUnsafe(PIECE);
const port = parentPort!;

interface Open {
  readonly hash: Hash;
  readonly inflate: boolean;
  readonly out: number | null;
  readonly tee: number | null;
  teeAt: number;
  size: number;
}

const streams = new Map<number, Open>();

function writeAll(fd: number, bytes: Uint8Array, position: number | null): void {
  for (let at = 0; at < bytes.length; ) {
    const n = writeSync(fd, bytes, at, bytes.length - at, position === null ? null : position + at);
    if (n <= 0) throw new Error('a metadata write wrote nothing');
    at += n;
  }
}

function take(s: Open, bytes: Uint8Array): void {
  s.hash.update(bytes);
  s.size += bytes.length;
  if (s.out !== null) writeAll(s.out, bytes, null);
}

/** Bytes that go on to the stream's tee (pushed bytes, and segments marked so). */
function tee(s: Open, bytes: Uint8Array): void {
  if (s.tee !== null) writeAll(s.tee, bytes, s.teeAt);
  s.teeAt += bytes.length;
}

function segments(s: Open, list: readonly DigestSegment[]): void {
  for (const seg of list) {
    if ('bytes' in seg) {
      take(s, seg.bytes);
      continue;
    }
    const fd = openSync(seg.file, 'r');
    try {
      for (let at = seg.from; at < seg.to; ) {
        const n = readSync(fd, buffer, 0, Math.min(PIECE, seg.to - at), at);
        if (n === 0) throw new Error(`${seg.file} is shorter than its index says`);
        take(s, buffer.subarray(0, n));
        if (seg.tee) tee(s, buffer.subarray(0, n));
        at += n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

function open(job: DigestJob): Open {
  const out = job.out === null ? null : openSync(job.out, 'w', 0o644);
  let teeFd: number | null = null;
  try {
    if (job.tee) teeFd = openSync(job.tee.file, 'r+');
  } catch (err) {
    if (out !== null) closeSync(out);
    throw err;
  }
  return {
    hash: createHash('sha256'),
    inflate: job.inflate === true,
    out,
    tee: teeFd,
    teeAt: job.tee?.at ?? 0,
    size: 0,
  };
}

function close(s: Open): void {
  if (s.out !== null) closeSync(s.out);
  if (s.tee !== null) closeSync(s.tee);
}

function inflateAtMost(members: Uint8Array, limit: number): Buffer {
  try {
    return gunzipSync(members, { maxOutputLength: Math.max(1, limit) });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      throw new Error(`stored metadata inflates to more than the ${limit} bytes recorded`);
    throw err;
  }
}

function handle(m: DigestMessage): DigestReply | null {
  if (m.op === 'open') {
    const s = open(m.job);
    streams.set(m.id, s);
    segments(s, m.job.segments);
    return null;
  }
  const s = streams.get(m.id);
  if (!s) return null; // failed or cancelled before: its error was sent then
  switch (m.op) {
    case 'push': {
      let bytes: Uint8Array = new Uint8Array(m.slice, 0, m.length);
      if (s.inflate) {
        // Concatenated members inflate as one stream (RFC 1952 §2.2); one call per slice, not per member. Never
        // more than recorded: a member that would inflate further fails before it takes the memory.
        bytes = inflateAtMost(bytes, m.inflated ?? 0);
        if (bytes.length !== m.inflated)
          throw new Error(`stored metadata inflates to ${bytes.length} bytes, not the ${m.inflated} recorded`);
      }
      take(s, bytes);
      tee(s, bytes);
      return null;
    }
    case 'end': {
      segments(s, m.segments);
      streams.delete(m.id);
      close(s);
      return { id: m.id, sha256: s.hash.digest('hex'), size: s.size };
    }
    case 'cancel':
      streams.delete(m.id);
      close(s);
      return null;
  }
}

port.on('message', (m: DigestMessage) => {
  let reply: DigestReply | null;
  try {
    reply = handle(m);
  } catch (err) {
    const s = streams.get(m.id);
    streams.delete(m.id);
    if (s) {
      try {
        close(s);
      } catch {
        // the error below is the one to report
      }
    }
    reply = { id: m.id, error: (err as Error).message };
  }
  if (reply) port.postMessage(reply);
  // A pushed slice goes back once read, whatever became of its stream.
  if (m.op === 'push') port.postMessage({ id: m.id, slice: m.slice } satisfies DigestReply);
});
