import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { execText, stopProcessStarter, useProcessStarter } from './exec.js';

/** What a command answered, or how it failed, in the fields callers read. */
async function outcome(cmd: string, args: string[], opts = {}) {
  try {
    return { ok: await execText(cmd, args, opts) };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: unknown; stderr?: unknown; killed?: unknown; signal?: unknown };
    const failed = { code: e.code, stdout: e.stdout, stderr: e.stderr };
    return { failed: e.signal ? { ...failed, killed: e.killed, signal: e.signal } : failed };
  }
}

const cases: [string, string[], object][] = [
  ['sh', ['-c', 'echo out; echo err >&2'], {}],
  ['sh', ['-c', 'echo partial; echo why >&2; exit 3'], {}],
  ['/nonexistent/command', [], {}],
  ['sh', ['-c', 'echo "$LENIX_T" "$(pwd)"'], { env: { LENIX_T: 'passed', PATH: '/usr/bin:/bin' }, cwd: '/tmp' }],
  ['sh', ['-c', 'head -c 5000 /dev/zero'], { maxBuffer: 1000 }],
  ['sh', ['-c', 'echo started; exec sleep 20'], { timeout: 300 }],
  ['sh', ['-c', 'cat; echo " and back"'], { input: 'fed in' }],
  ['cat', [], {}],
];

describe('commands through the process starter', () => {
  after(() => stopProcessStarter());

  test('answer as execFile does: output, exit codes, a missing command, env and cwd, the output limit, a timeout, input', async () => {
    const directly = [];
    for (const [cmd, args, opts] of cases) directly.push(await outcome(cmd, args, opts));
    const starter = useProcessStarter();
    const through = [];
    for (const [cmd, args, opts] of cases) through.push(await outcome(cmd, args, opts));
    assert.ok(starter.pid !== undefined && starter.pid !== process.pid, 'ran in the starter');
    assert.deepEqual(through, directly);
    assert.deepEqual(through[0], { ok: { stdout: 'out\n', stderr: 'err\n' } });
    assert.deepEqual(through[1], { failed: { code: 3, stdout: 'partial\n', stderr: 'why\n' } });
    assert.equal((through[2] as { failed: { code: unknown } }).failed.code, 'ENOENT');
    assert.deepEqual(through[3], { ok: { stdout: 'passed /tmp\n', stderr: '' } });
    assert.equal((through[4] as { failed: { code: unknown } }).failed.code, 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER');
    assert.deepEqual(through[5], {
      failed: { code: null, stdout: 'started\n', stderr: '', killed: true, signal: 'SIGTERM' },
    });
    assert.deepEqual(through[6], { ok: { stdout: 'fed in and back\n', stderr: '' } });
    assert.deepEqual(through[7], { ok: { stdout: '', stderr: '' } }, 'no input: an empty standard input');
  });

  test('many at once are answered each with its own output', async () => {
    useProcessStarter();
    const outs = await Promise.all(
      Array.from({ length: 40 }, (_, i) => execText('sh', ['-c', `echo ${i}`]).then((r) => r.stdout)),
    );
    assert.deepEqual(
      outs,
      Array.from({ length: 40 }, (_, i) => `${i}\n`),
    );
  });

  test('a starter that dies fails what it was running, and the next command starts a new one', async () => {
    const starter = useProcessStarter();
    await execText('true', []);
    const first = starter.pid!;
    const running = execText('sleep', ['30']);
    process.kill(first, 'SIGKILL');
    await assert.rejects(running, /the process starter exited/);
    assert.deepEqual(await execText('sh', ['-c', 'echo again']), { stdout: 'again\n', stderr: '' });
    assert.notEqual(starter.pid, first);
  });
});
