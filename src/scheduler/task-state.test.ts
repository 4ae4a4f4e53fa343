import assert from 'node:assert/strict';
import { test } from 'node:test';
import { afterLostAttempt, buildStateFromTasks } from './task-state.js';

test('a lost attempt requeues until attempts run out, then fails with the reason', () => {
  assert.deepEqual(afterLostAttempt(1, 3, 'LEASE_EXPIRED', 'gone'), { state: 'queued' });
  assert.deepEqual(afterLostAttempt(3, 3, 'LEASE_EXPIRED', 'gone'), {
    state: 'failed',
    code: 'LEASE_EXPIRED',
    reason: 'gone (gave up after 3 attempts)',
  });
});

test('a build succeeds only when the SRPM fanned out and every task succeeded', () => {
  assert.equal(buildStateFromTasks(['succeeded'], false), 'running');
  assert.equal(buildStateFromTasks(['succeeded', 'succeeded'], true), 'succeeded');
  assert.equal(buildStateFromTasks(['succeeded', 'failed', 'queued'], true), 'failed');
  assert.equal(buildStateFromTasks(['queued'], false), 'queued');
  assert.equal(buildStateFromTasks(['succeeded', 'cancelled'], true), 'cancelled');
});
