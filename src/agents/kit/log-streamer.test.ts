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
