import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TEST_STAGE_LIMITS } from '../../core/protocol.js';
import { LINT_RESULT, parseStages } from './test-root.js';

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

test("the rpmlint stage counts rpmlint's errors and warnings in bash, and fails a run that never finished", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-lint-'));
  const run = async (output: string, status: number) => {
    const file = path.join(dir, 'rpmlint.out');
    await writeFile(file, output);
    const script = `result() { echo "@@LENIX-RESULT $1 $2 $3"; }\n${LINT_RESULT}lint_result "$1" "$2"`;
    return new Promise<string>((resolve, reject) =>
      execFile('bash', ['-c', script, 'lint', file, String(status)], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
  };
  try {
    const summary = '1 packages and 0 specfiles checked; 2 errors, 1 warnings, 0 badness; has taken 0.1 s';
    const failed = await run(
      ['a.noarch: E: no-changelogname-tag', 'a.noarch: W: no-documentation', 'a.noarch: E: x: W: y', summary].join(
        '\n',
      ),
      64,
    );
    // The output is printed as it was, last line without its newline too.
    assert.ok(failed.startsWith(`a.noarch: E: no-changelogname-tag\n`));
    assert.ok(failed.includes(`${summary}\n`));
    assert.deepEqual(parseStages(failed), [{ name: 'rpmlint', outcome: 'failed', detail: '2 errors, 2 warnings' }]);
    const clean = await run(`a.noarch: W: no-documentation\n${summary.replace('2 errors', '0 errors')}\n`, 0);
    assert.deepEqual(parseStages(clean), [{ name: 'rpmlint', outcome: 'passed', detail: '0 errors, 1 warnings' }]);
    // Killed before its summary: a failure, never a pass with nothing counted.
    const killed = await run('a.noarch: W: no-documentation\n', 137);
    assert.deepEqual(parseStages(killed), [
      { name: 'rpmlint', outcome: 'failed', detail: 'rpmlint did not finish (exit 137)' },
    ]);
    assert.deepEqual(parseStages(await run('', 1)), [
      { name: 'rpmlint', outcome: 'failed', detail: 'rpmlint did not finish (exit 1)' },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
