import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildrootOf, metadataSignaturesOf, parseTaskResult, TEST_STAGE_LIMITS, testStagesOf } from './protocol.js';
import { taskStage } from './task-stage.js';

test('a task is shown by its stage, never the queue arch any', () => {
  assert.deepEqual(
    [
      { kind: 'srpm', arch: 'any' },
      { kind: 'binary', arch: 'aarch64' },
      { kind: 'sign', arch: 'any' },
      { kind: 'repomd', arch: 'any' },
      { kind: 'test', arch: 'any' },
      { kind: 'test', arch: 's390x' },
    ].map(taskStage),
    ['srpm', 'build aarch64', 'sign', 'repomd', 'test', 'test s390x'],
  );
});

test("an agent's result is parsed by its task's kind; anything else is a coded 400 naming the field", () => {
  const stages = [{ name: 'install', outcome: 'passed', detail: '' }];
  const r = parseTaskResult('test', { stages });
  assert.deepEqual(testStagesOf(r), stages);
  assert.equal(buildrootOf(r), null);
  assert.equal(parseTaskResult('binary', null), null);
  assert.throws(() => parseTaskResult('binary', { stages }), {
    code: 'BAD_REQUEST',
    message: /binary task: buildroot/,
  });
  assert.throws(() => parseTaskResult('test', { stages: [{ name: 'x', outcome: 'maybe', detail: '' }] }), {
    code: 'BAD_REQUEST',
    message: /stages\.0\.outcome/,
  });
  const long = { name: 'tests', outcome: 'failed', detail: 'x'.repeat(TEST_STAGE_LIMITS.detail + 1) };
  assert.throws(() => parseTaskResult('test', { stages: [long] }), { code: 'BAD_REQUEST' });
  const sigs = parseTaskResult('repomd', { key: 'F'.repeat(40), signatures: [{ path: 'a', signature: 's' }] });
  assert.deepEqual(metadataSignaturesOf(sigs), [{ path: 'a', signature: 's' }]);
});
