import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogStreamer } from './log-streamer.js';

test('bytes reach the server in order, once, even when a send fails and bytes arrive meanwhile', async () => {
  let stored = Buffer.alloc(0);
  let failNext = true;
  const send = async (offset: number, data: Uint8Array) => {
    if (failNext) {
      failNext = false;
      throw new Error('network');
    }
    assert.ok(offset <= stored.length);
    stored = Buffer.concat([stored.subarray(0, offset), Buffer.from(data)]);
    return stored.length;
  };
  const s = new LogStreamer(send, 10_000, 1 << 20);
  s.write('one\n');
  const f = s.flush();
  s.write('two\n');
  await f;
  s.write('three\n');
  await s.close();
  assert.equal(stored.toString(), 'one\ntwo\nthree\n');
});

test('a log that grows faster than it is sent goes out in requests no larger than the limit, all of it', async () => {
  let stored = Buffer.alloc(0);
  let largest = 0;
  const send = async (offset: number, data: Uint8Array) => {
    largest = Math.max(largest, data.length);
    await new Promise((r) => setTimeout(r, 5));
    stored = Buffer.concat([stored.subarray(0, offset), Buffer.from(data)]);
    return stored.length;
  };
  const s = new LogStreamer(send, 10, 64 * 1024, 256 * 1024);
  const line = `${'x'.repeat(99)}\n`;
  for (let i = 0; i < 50_000; i++) s.write(line);
  await s.close();
  assert.equal(stored.length, 50_000 * 100);
  assert.ok(largest <= 256 * 1024, `largest request ${largest} bytes`);
  assert.equal(stored.toString(), line.repeat(50_000));
});
