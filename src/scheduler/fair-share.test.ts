import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clampPriority, currentVirtualTime, virtualStart } from './fair-share.js';

test('a source that queues many tasks gets consecutive virtual starts', () => {
  let last: number | null = null;
  const starts: number[] = [];
  for (let i = 0; i < 5; i++) {
    last = virtualStart(0, last);
    starts.push(last);
  }
  assert.deepEqual(starts, [0, 1, 2, 3, 4]);
});

test('a newcomer starts at the current virtual time, ahead of a backlog', () => {
  const now = currentVirtualTime(0, 499);
  assert.equal(virtualStart(now, null), 0);
  assert.equal(virtualStart(now, 499), 500);
});

test('with nothing queued the clock moves past everything handed out', () => {
  assert.equal(currentVirtualTime(null, 41), 42);
  assert.equal(currentVirtualTime(null, null), 0);
});

test('priorities are clamped', () => {
  assert.equal(clampPriority(1e9), 100);
  assert.equal(clampPriority(-1e9), -100);
  assert.equal(clampPriority(3.7), 3);
});
