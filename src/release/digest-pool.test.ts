import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { digestStream, openDigest } from './digest-pool.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-digest-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

test('a stream hashes and writes its segments, then what is pushed, then its end, in order', async () => {
  const kept = randomBytes(3 * 1024 * 1024 + 17); // more than the worker's 1 MiB read buffer
  const keptFile = path.join(dir, 'kept');
  await writeFile(keptFile, kept);
  const log = path.join(dir, 'log');
  await writeFile(log, Buffer.from('0123456789'));
  const head = Buffer.from('head');
  const out = path.join(dir, 'out');
  const s = openDigest({
    segments: [{ bytes: head }, { file: keptFile, from: 5, to: kept.length - 3 }],
    out,
    tee: { file: log, at: 10 },
  });
  // More than the 24 shared slices of 1 MiB, so push has to wait for the worker to give slices back.
  const pushed: Buffer[] = [];
  for (let i = 0; i < 24; i++) {
    const a = randomBytes(512 * 1024);
    const b = randomBytes(1024 * 1024 - 7);
    pushed.push(a, b);
    await s.push([a, b]);
  }
  const tail = Buffer.from('tail');
  const got = await s.end([{ bytes: tail }]);
  const whole = Buffer.concat([head, kept.subarray(5, kept.length - 3), ...pushed, tail]);
  assert.equal(got.size, whole.length);
  assert.equal(got.sha256, sha(whole));
  assert.ok((await readFile(out)).equals(whole), 'the out file holds the stream');
  // The tee got the pushed bytes only, from its offset on, after what the file held.
  assert.ok((await readFile(log)).equals(Buffer.concat([Buffer.from('0123456789'), ...pushed])));
});

test('streams on several lanes at once each get their own bytes', async () => {
  const parts = Array.from({ length: 6 }, () => [randomBytes(200_000), randomBytes(300_001)] as const);
  const streams = parts.map((_, i) => openDigest({ segments: [{ bytes: Buffer.from(`s${i}`) }], out: null }, i));
  for (let round = 0; round < 2; round++) for (const [i, s] of streams.entries()) await s.push([parts[i]![round]!]);
  const got = await Promise.all(streams.map((s) => s.end([])));
  for (const [i, g] of got.entries())
    assert.equal(g.sha256, sha(Buffer.from(`s${i}`), parts[i]![0]!, parts[i]![1]!), `stream ${i}`);
});

test('an inflating stream takes whole gzip members and hashes and tees what they inflate to', async () => {
  const log = path.join(dir, 'inflate-log');
  await writeFile(log, Buffer.from('kept'));
  const head = Buffer.from('<head>');
  // Many small members, several to a slice, and members larger than a 1 MiB slice (sent whole on their own).
  const texts = [
    ...Array.from({ length: 3000 }, (_, i) => Buffer.from(`<package n="${i}">${'x'.repeat(i % 700)}</package>\n`)),
    randomBytes(3 * 1024 * 1024), // stays about as large gzipped
    Buffer.from('<tail-entry/>\n'),
  ];
  const members = texts.map((t) => gzipSync(t));
  assert.ok(members.some((m) => m.length > 1024 * 1024));
  const s = openDigest({ segments: [{ bytes: head }], out: null, tee: { file: log, at: 4 }, inflate: true });
  for (let i = 0; i < members.length; i += 700)
    await s.push(
      members.slice(i, i + 700),
      texts.slice(i, i + 700).map((t) => t.length),
    );
  const got = await s.end([{ bytes: Buffer.from('</foot>') }]);
  const whole = Buffer.concat([head, ...texts, Buffer.from('</foot>')]);
  assert.equal(got.size, whole.length);
  assert.equal(got.sha256, sha(whole));
  assert.ok((await readFile(log)).equals(Buffer.concat([Buffer.from('kept'), ...texts])));

  // Members that inflate to another length than recorded, or are not gzip at all, fail the stream.
  const wrong = openDigest({ segments: [], out: null, inflate: true });
  await assert.rejects(
    (async () => {
      await wrong.push([gzipSync('abc')], [4]);
      await wrong.end([]);
    })(),
    /inflates to 3 bytes, not the 4 recorded/,
  );
  const bomb = openDigest({ segments: [], out: null, inflate: true });
  await assert.rejects(
    (async () => {
      await bomb.push([gzipSync(Buffer.alloc(64 * 1024 * 1024))], [10]);
      await bomb.end([]);
    })(),
    /inflates to more than the 10 bytes recorded/,
  );
  const garbage = openDigest({ segments: [], out: null, inflate: true });
  await assert.rejects(
    (async () => {
      await garbage.push([Buffer.from('not gzip')], [8]);
      await garbage.end([]);
    })(),
    /incorrect header check/,
  );
});

test('a failing stream rejects, and leaves other streams alone', { timeout: 60_000 }, async () => {
  // A segment past the end of its file.
  const short = path.join(dir, 'short');
  await writeFile(short, Buffer.from('abc'));
  await assert.rejects(
    digestStream({ segments: [{ file: short, from: 0, to: 10 }], out: null }),
    /shorter than its index says/,
  );
  // A tee that cannot be opened fails the stream: its push or its end is refused with the worker's reason.
  const bad = openDigest({ segments: [], out: null, tee: { file: path.join(dir, 'no', 'such'), at: 0 } });
  const good = openDigest({ segments: [{ bytes: Buffer.from('x') }], out: null });
  await assert.rejects(
    (async () => {
      await bad.push([Buffer.from('y')]);
      await bad.end([]);
    })(),
    /ENOENT/,
  );
  assert.equal((await good.end([])).sha256, sha(Buffer.from('x')));
  // A failed stream's slices come back: pushing more than all of them through another stream still ends.
  const failing = openDigest({ segments: [], out: null, tee: { file: path.join(dir, 'no', 'such'), at: 0 } });
  const big = randomBytes(4 * 1024 * 1024);
  await assert.rejects(async () => {
    for (let i = 0; i < 16; i++) await failing.push([big]);
  }, /ENOENT/);
  const after = openDigest({ segments: [], out: null });
  for (let i = 0; i < 16; i++) await after.push([big]);
  assert.equal((await after.end([])).size, 16 * big.length);
  // A cancelled stream closes its out file, written so far, and takes no more.
  const out = path.join(dir, 'cancelled');
  const c = openDigest({ segments: [{ bytes: Buffer.from('part') }], out });
  c.cancel();
  await assert.rejects(c.push([Buffer.from('more')]), /already ended/);
  assert.equal((await digestStream({ segments: [{ file: out, from: 0, to: 4 }], out: null })).size, 4);
  assert.equal((await stat(out)).size, 4);
});
