import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { type StartedProcess, execText, startProcess, stopProcessStarter, useProcessStarter } from './exec.js';

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

  test('without a working python3 commands run directly', async () => {
    for (const python of ['/nonexistent/python3', '/bin/false']) {
      stopProcessStarter();
      const starter = useProcessStarter(python);
      // Asked before the interpreter has failed: runs directly when it never ran, fails when it ran.
      const early = execText('sh', ['-c', 'echo early']).then(
        (r) => r.stdout,
        (err: Error) => err.message,
      );
      assert.equal(await starter.whenReady(), false, `${python} never gets ready`);
      if (python === '/bin/false')
        assert.notEqual(await early, 'early\n', 'a command a starter that ran may have started is not run again');
      else assert.equal(await early, 'early\n');
      assert.deepEqual(await execText('sh', ['-c', 'echo still runs']), { stdout: 'still runs\n', stderr: '' });
      assert.equal(starter.unusable, true);
      const p = startProcess('sh', ['-c', 'exit 5'], { stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(await new Promise((resolve) => p.on('close', resolve)), 5);
    }
    stopProcessStarter();
  });

  test('a starter that dies fails what it was running, and the next command starts a new one', async () => {
    const starter = useProcessStarter();
    // Ready first: one killed before it listens is not started again (the test above).
    assert.equal(await starter.whenReady(), true);
    await execText('true', []);
    const first = starter.pid!;
    const running = execText('sleep', ['30']);
    process.kill(first, 'SIGKILL');
    await assert.rejects(running, /the process starter exited/);
    assert.deepEqual(await execText('sh', ['-c', 'echo again']), { stdout: 'again\n', stderr: '' });
    assert.notEqual(starter.pid, first);
  });
});

/** Everything a started process wrote on each of its streams, and how it ended. */
async function outcomeOf(p: StartedProcess, feed: Record<number, string>) {
  const read: Record<number, string> = {};
  for (const [n, s] of p.stdio.entries()) {
    if (!s) continue;
    read[n] = '';
    s.on('data', (d: Buffer) => {
      read[n] += d.toString();
    });
    if (n in feed) s.end(feed[n]);
  }
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
    p.on('close', (c, s) => resolve([c, s]));
    p.on('error', reject);
  });
  return { code, signal, read };
}

/** Whether `pid` has ended (gone, or a zombie waiting for its parent). */
function ended(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}

describe('processes started with streams on chosen fds', () => {
  after(() => stopProcessStarter());
  const script =
    'cat >&3; echo out; echo err >&2; read -r x <&5; echo "got $x" >&4; (echo quiet >&6) 2>/dev/null || echo "fd 6 closed" >&4; exit 7';
  const stdio = ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore'] as const;
  const feed = { 0: 'in on fd 0', 5: 'five\n' };

  test('through the starter as with spawn: each fd its stream, an ignored one closed, the exit code', async () => {
    stopProcessStarter();
    const direct = startProcess('sh', ['-c', script], { stdio });
    const directly = await outcomeOf(direct, feed);
    assert.deepEqual(directly, {
      code: 7,
      signal: null,
      read: { 0: '', 1: 'out\n', 2: 'err\n', 3: 'in on fd 0', 4: 'got five\nfd 6 closed\n', 5: '' },
    });
    const starter = useProcessStarter();
    assert.equal(await starter.whenReady(), true);
    const through = startProcess('sh', ['-c', `echo $PPID >&2; ${script}`], { stdio });
    const result = await outcomeOf(through, feed);
    const [ppid, ...rest] = result.read[2]!.split('\n');
    assert.equal(Number(ppid), starter.pid, 'started by the starter');
    assert.deepEqual({ ...result, read: { ...result.read, 2: rest.join('\n') } }, directly);
  });

  test('a detached one is killed with its whole group, a signal sent before it has started included', async () => {
    const starter = useProcessStarter();
    assert.equal(await starter.whenReady(), true);
    const p = startProcess('sh', ['-c', 'sleep 60 & echo $!; wait'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    const first = await new Promise<string>((resolve) =>
      p.stdio[1]!.once('data', (d: Buffer) => resolve(d.toString())),
    );
    const background = Number(first.trim());
    const closed = new Promise<string | null>((resolve) => p.on('close', (_c, s) => resolve(s)));
    p.kill('SIGKILL');
    assert.equal(await closed, 'SIGKILL');
    const gone = () => ended(background);
    for (let i = 0; i < 200 && !gone(); i++) await new Promise((r) => setImmediate(r));
    assert.ok(gone(), 'the background sleep of its group is gone too');

    const early = startProcess('sleep', ['60'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    early.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => early.on('close', (_c, s) => resolve(s))), 'SIGTERM');
  });

  test('it closes when a stream of it is never read, as with spawn', async () => {
    for (const use of [true, false]) {
      if (use) assert.equal(await useProcessStarter().whenReady(), true);
      else stopProcessStarter();
      const p = startProcess('sh', ['-c', 'echo unread; exit 4'], { stdio: ['pipe', 'pipe', 'pipe'] });
      assert.equal(await new Promise((resolve) => p.on('close', resolve)), 4);
    }
  });

  test('a command that does not exist fails with ENOENT, with or without the starter', async () => {
    for (const use of [true, false]) {
      if (use) assert.equal(await useProcessStarter().whenReady(), true);
      else stopProcessStarter();
      const p = startProcess('/nonexistent/command', [], { stdio: ['ignore', 'pipe', 'pipe'] });
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => p.on('error', resolve));
      assert.equal(err.code, 'ENOENT');
    }
  });
});
