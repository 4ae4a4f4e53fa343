import assert from 'node:assert/strict';
import { test } from 'node:test';
import { afterLostAttempt, buildStateFromTasks, taskEnd } from './task-state.js';

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

test('a lease outcome decides where its task ends', () => {
  assert.deepEqual(taskEnd({ kind: 'success' }, 1, 3), { state: 'succeeded', code: null, reason: null });
  assert.deepEqual(taskEnd({ kind: 'success' }, 1, 3, { kind: 'fail-build', code: 'UNSIGNED_PACKAGES', reason: 'x' }), {
    state: 'failed',
    code: 'UNSIGNED_PACKAGES',
    reason: 'x',
  });
  assert.deepEqual(taskEnd({ kind: 'failure', code: 'BUILD_FAILED', reason: 'rc=1' }, 1, 3), {
    state: 'failed',
    code: 'BUILD_FAILED',
    reason: 'rc=1',
  });
  assert.deepEqual(taskEnd({ kind: 'error', code: 'AGENT_ERROR', reason: 'disk' }, 1, 3), {
    state: 'queued',
    code: 'AGENT_ERROR',
    reason: 'disk',
  });
  const last = taskEnd({ kind: 'error', code: 'AGENT_ERROR', reason: 'disk' }, 3, 3);
  assert.equal(last.state, 'failed');
  assert.match(last.reason ?? '', /gave up after 3 attempts/);
});
