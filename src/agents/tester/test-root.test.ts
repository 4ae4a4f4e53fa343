import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TEST_STAGE_LIMITS } from '../../core/protocol.js';
import { parseStages } from './test-root.js';

test('stage lines are read back, cut to what the server accepts (package output can print them too)', () => {
  const out = [
    'noise',
    '@@LENIX-RESULT install passed',
    `@@LENIX-RESULT tests failed ${'x'.repeat(10_000)}`,
    ...Array.from({ length: 2000 }, (_, i) => `@@LENIX-RESULT ${'n'.repeat(300)}${i} skipped forged`),
  ].join('\n');
  const stages = parseStages(out);
  assert.deepEqual(stages[0], { name: 'install', outcome: 'passed', detail: '' });
  assert.equal(stages[1]!.detail.length, TEST_STAGE_LIMITS.detail);
  assert.equal(stages.length, TEST_STAGE_LIMITS.stages);
  assert.ok(stages.every((s) => s.name.length <= TEST_STAGE_LIMITS.name));
});
