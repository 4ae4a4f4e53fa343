import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SANDBOX_WORK, bwrapArgs, runSandboxed } from './sandbox.js';

test('the sandbox has no network, a read-only host and only the work folder writable', () => {
  const args = bwrapArgs({ workDir: '/w', cwd: SANDBOX_WORK, env: { A: 'b' }, hostname: 'h', hide: [], command: ['true'] });
  for (const flag of ['--unshare-net', '--unshare-pid', '--die-with-parent', '--clearenv', '--new-session']) assert.ok(args.includes(flag), flag);
  const ro = args.indexOf('--ro-bind');
  assert.deepEqual(args.slice(ro, ro + 3), ['--ro-bind', '/', '/']);
  const bind = args.indexOf('--bind');
  assert.deepEqual(args.slice(bind, bind + 3), ['--bind', '/w', SANDBOX_WORK]);
  assert.equal(args.filter((a) => a === '--bind').length, 1);
});

test('hidden paths are empty and read-only; writes outside the work folder fail', async () => {
  const secret = await mkdtemp(path.join(os.tmpdir(), 'lenix-secret-'));
  const work = await mkdtemp(path.join(os.tmpdir(), 'lenix-work-'));
  await writeFile(path.join(secret, 'token'), 'top secret');
  let out = '';
  try {
    const r = await runSandboxed({
      command: ['sh', '-c', `ls -A ${secret} | wc -l; touch ${secret}/x 2>/dev/null && echo wrote-secret; touch /etc/x 2>/dev/null && echo wrote-etc; echo ok > out.txt && cat out.txt; echo "env:$A:$HOME"`],
      workDir: work,
      cwd: SANDBOX_WORK,
      env: { PATH: '/usr/bin:/bin', A: 'set' },
      hostname: 'lenix-test',
      hide: [secret],
      timeoutMs: 20_000,
      memoryBytes: 1024 ** 3,
      onOutput: (c) => {
        out += c.toString();
      },
    });
    assert.deepEqual(r, { kind: 'exited', code: 0 });
    assert.deepEqual(out.trim().split('\n'), ['0', 'ok', 'env:set:']);
  } finally {
    await rm(secret, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
});

test('the wall-clock limit kills the whole process tree', async () => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'lenix-work-'));
  try {
    const started = Date.now();
    const r = await runSandboxed({
      command: ['sh', '-c', 'sleep 1000 & sleep 1000; wait'],
      workDir: work,
      cwd: SANDBOX_WORK,
      env: { PATH: '/usr/bin:/bin' },
      hostname: 'lenix-test',
      hide: [],
      timeoutMs: 300,
      memoryBytes: 1024 ** 3,
      onOutput: () => undefined,
    });
    assert.equal(r.kind, 'killed');
    assert.equal(r.kind === 'killed' && r.why, 'timeout');
    assert.ok(Date.now() - started < 10_000);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
