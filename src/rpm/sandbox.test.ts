import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { identityFrom, resolveSandboxIdentity, type SandboxIdentity } from './sandbox-identity.js';
import {
  DEFAULT_LIMITS,
  SANDBOX_WORK,
  runSandboxed,
  startSandbox,
  type SandboxLimits,
  type SandboxRun,
} from './sandbox.js';
import { bwrapArgs, launcher } from './sandbox-plan.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

test('as root the sandbox drops to the sandbox user with its subordinate ids; otherwise it keeps the caller', () => {
  const files = {
    passwd: 'root:x:0:0::/root:/bin/bash\nlenix-build:x:999:995::/nonexistent:/usr/sbin/nologin\n',
    subuid: 'lenix-build:100000:65536\n',
    subgid: 'lenix-build:100000:65536\n',
  };
  assert.deepEqual(identityFrom(0, 0, files), {
    kind: 'system-user',
    user: 'lenix-build',
    uid: 999,
    gid: 995,
    subordinate: { uid: 100000, gid: 100000, count: 65536 },
  });
  assert.deepEqual(identityFrom(1000, 1000, files), { kind: 'current-user', uid: 1000, gid: 1000 });
  assert.equal((identityFrom(0, 0, { ...files, subuid: '' }) as { subordinate: unknown }).subordinate, null);
  assert.throws(() => identityFrom(0, 0, { ...files, passwd: 'root:x:0:0::/root:/bin/bash\n' }), {
    code: 'SANDBOX_UNAVAILABLE',
  });
  assert.throws(() => identityFrom(0, 0, { ...files, passwd: 'lenix-build:x:0:0::/:/bin/sh\n' }), {
    code: 'SANDBOX_UNAVAILABLE',
  });
  const drop = launcher(identityFrom(0, 0, files));
  assert.deepEqual(drop.slice(0, 4), ['setpriv', '--reuid=999', '--regid=995', '--clear-groups']);
  assert.ok(drop.includes('--bounding-set=-all') && drop.includes('--inh-caps=-all'));
  assert.deepEqual(launcher(identityFrom(1000, 1000, files)), []);
});

test('only /usr and chosen /etc files of the host are mounted, read-only, in new namespaces', () => {
  const identity: SandboxIdentity = { kind: 'current-user', uid: 1000, gid: 1000 };
  const { args } = bwrapArgs({
    identity,
    limits: DEFAULT_LIMITS,
    inside: 'user',
    command: ['true'],
    env: {},
    hostname: 'h',
  });
  for (const flag of [
    '--unshare-user',
    '--unshare-net',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--disable-userns',
    '--die-with-parent',
    '--clearenv',
    '--new-session',
  ])
    assert.ok(args.includes(flag), flag);
  const binds = args.flatMap((a, i) => (a === '--ro-bind' ? [args[i + 1]!] : []));
  assert.ok(binds.includes('/usr'));
  for (const b of binds)
    assert.ok(
      b === '/usr' || b === '/usr/bin/bash' || b.startsWith('/etc/') || /^\/(bin|sbin|lib\w*)$/.test(b),
      `unexpected host path ${b}`,
    );
  // /bin/sh is bash, as on EL: the host's bash bound over it.
  const sh = args.findIndex((a, i) => a === '--ro-bind' && args[i + 1] === '/usr/bin/bash');
  assert.equal(args[sh + 2], '/usr/bin/sh');
  for (const secret of [
    '/etc/shadow',
    '/etc/gshadow',
    '/etc/sudoers',
    '/etc/ssh',
    '/etc/machine-id',
    '/root',
    '/home',
    '/var',
    '/tmp',
    '/',
  ])
    assert.ok(!binds.includes(secret), secret);
  for (const writable of ['--bind', '--bind-try', '--dev-bind']) assert.ok(!args.includes(writable), writable);
  assert.deepEqual(args.slice(args.indexOf('--tmpfs') - 2, args.indexOf('--tmpfs') + 2), [
    '--size',
    String(DEFAULT_LIMITS.diskBytes),
    '--tmpfs',
    '/tmp',
  ]);
});

describe('the sandbox, run for real', () => {
  let identity: SandboxIdentity;
  let dir: string;
  const limits: SandboxLimits = {
    ...DEFAULT_LIMITS,
    timeoutMs: 60_000,
    memoryBytes: 2 * 1024 ** 3,
    diskBytes: 64 * 1024 ** 2,
    logBytes: 16 * 1024 ** 2,
    processes: 256,
  };

  before(async () => {
    identity = await resolveSandboxIdentity();
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-sandbox-test-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const sandbox = async (script: string, over: Partial<SandboxRun> = {}) => {
    let out = '';
    const r = await runSandboxed({
      identity,
      limits,
      inside: 'user',
      command: ['bash', '-c', script],
      env: { PATH, HOME: SANDBOX_WORK },
      hostname: 'lenix-test',
      onOutput: (c) => {
        out += c.toString('utf8');
      },
      ...over,
    });
    return { r, out };
  };

  test('package code holds no capability, sees no host secret and writes nowhere on the host', async () => {
    const secret = path.join(dir, 'secret');
    await mkdir(secret);
    await writeFile(path.join(secret, 'admin.token'), 'top secret');
    const marker = path.join(os.tmpdir(), `lenix-sandbox-marker-${process.pid}`);
    const { r, out } = await sandbox(
      [
        'grep CapEff /proc/self/status',
        'echo "uid=$(id -u)"',
        `cat ${secret}/admin.token 2>/dev/null && echo READ-SECRET`,
        'cat /etc/shadow 2>/dev/null && echo READ-SHADOW',
        'for p in /root /home /srv /opt /work /mnt /media /var/lib/dpkg /var/log /etc/ssh /etc/sudoers /run/user; do [ -e $p ] && echo SAW-HOST $p; done',
        'mount -o remount,rw / 2>/dev/null && echo REMOUNTED',
        'mount -t tmpfs x /usr 2>/dev/null && echo MOUNTED',
        'unshare -Ur true 2>/dev/null && echo USERNS',
        `touch ${marker} 2>/dev/null; echo wrote-private-tmp=$?`,
        'touch /usr/x /etc/x 2>/dev/null || echo host-readonly',
        'echo ok > out.txt && cat out.txt',
      ].join('\n'),
    );
    assert.deepEqual(r, { kind: 'exited', code: 0, diskFull: false, outputs: [] });
    assert.match(out, /^CapEff:\s+0000000000000000$/m);
    assert.match(out, /^uid=1000$/m);
    for (const bad of ['READ-SECRET', 'READ-SHADOW', 'SAW-HOST', 'REMOUNTED', 'MOUNTED', 'USERNS'])
      assert.doesNotMatch(out, new RegExp(bad));
    assert.match(out, /wrote-private-tmp=0/);
    assert.equal(existsSync(marker), false, 'a write to /tmp inside lands in the sandbox, not on the host');
    assert.match(out, /host-readonly/);
    assert.match(out, /^ok$/m);
  });

  test('inputs come in as files; only regular files come back out, never through a link', async () => {
    const input = path.join(dir, 'in1');
    const outDir = path.join(dir, 'out1');
    await mkdir(input);
    await mkdir(outDir);
    await writeFile(path.join(input, 'data.txt'), 'from the agent\n');
    const { r } = await sandbox(
      'mkdir -p o/x86_64 && cp in/data.txt o/x86_64/a.rpm && ln -s /etc/passwd o/b.rpm && echo not-wanted > o/c.txt && mkfifo o/d.rpm',
      {
        inputDir: input,
        output: { from: `${SANDBOX_WORK}/o`, to: outDir, accept: (n) => n.endsWith('.rpm') },
      },
    );
    assert.deepEqual(r, { kind: 'exited', code: 0, diskFull: false, outputs: ['a.rpm'] });
    assert.deepEqual(await readdir(outDir), ['a.rpm']);
    assert.equal(await readFile(path.join(outDir, 'a.rpm'), 'utf8'), 'from the agent\n');
  });

  test('outputs past the disk limit (a sparse file) or with too many entries are refused without reading them all', async () => {
    for (const [i, script] of [
      'mkdir o && truncate -s 100G o/huge.rpm',
      'mkdir o && cd o && for i in $(seq 1 12000); do : > f$i.txt; done',
    ].entries()) {
      const outDir = path.join(dir, `out-bound-${i}`);
      await mkdir(outDir);
      const started = Date.now();
      const { r, out } = await sandbox(script, {
        output: { from: `${SANDBOX_WORK}/o`, to: outDir, accept: (n) => n.endsWith('.rpm') },
      });
      assert.deepEqual(r, { kind: 'exited', code: 126, diskFull: false, outputs: [] }, out);
      assert.match(out, /lenix: outputs refused: the sandbox's output/);
      assert.ok(Date.now() - started < 30_000, 'refused early, not after streaming 100 GB');
      assert.ok((await readdir(outDir)).length === 0 || i === 0);
    }
  });

  test('an output folder that is a link to the host is read inside the sandbox, not on the host', async () => {
    const outDir = path.join(dir, 'out2');
    await mkdir(outDir);
    const hostFile = path.join(dir, 'host.rpm');
    await writeFile(hostFile, 'host bytes');
    await symlink(hostFile, path.join(dir, 'link.rpm'));
    const { r } = await sandbox(`ln -s ${dir} o`, {
      output: { from: `${SANDBOX_WORK}/o`, to: outDir, accept: () => true },
    });
    assert.equal(r.kind, 'exited');
    assert.deepEqual(await readdir(outDir), []);
  });

  test('writing past the disk limit fails the run and says the disk was full', async () => {
    const { r, out } = await sandbox('dd if=/dev/zero of=big bs=1M count=128 2>&1 | grep -v records; exit 1');
    assert.deepEqual(r, { kind: 'exited', code: 1, diskFull: true, outputs: [] });
    assert.match(out, /No space left on device/);
  });

  test('a run printing past the log limit is cut at the limit with a note, and stopped', async () => {
    let out = '';
    const r = await runSandboxed({
      identity,
      limits: { ...limits, logBytes: 1024 * 1024 },
      inside: 'user',
      command: ['bash', '-c', 'yes "flooding the log with a line of text"'],
      env: { PATH },
      hostname: 'lenix-test',
      onOutput: (c) => {
        out += c.toString('utf8');
      },
    });
    assert.deepEqual(r, { kind: 'killed', why: 'log-limit', signal: 'SIGKILL' });
    const note = out.indexOf('\nlenix: the log reached its limit');
    assert.equal(note, 1024 * 1024);
    assert.ok(out.length < 1024 * 1024 + 200);
  });

  test("a fork bomb stops at its own sandbox's process limit; a second sandbox of the same user forks on", async () => {
    const marker = `lenix-bomb-${process.pid}-${Date.now()}`;
    let max = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        max = Math.max(max, await countProcesses(marker));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // The bomb lives 12 s: long enough to reach the limit on a loaded machine before the test looks for it (with
    // 4 s it once did not, under a full CI run beside other work), and the other sandbox runs while it is at it.
    const bomb = sandbox(
      `timeout -s KILL 12 bash -c 'b() { b | b & }; b; while [ $SECONDS -lt 30 ]; do :; done' ${marker} 2>/dev/null; echo bomb-over`,
    );
    await until(async () => (await countProcesses(marker)) >= limits.processes - 5);
    const other = await sandbox('ok=0; for i in $(seq 1 50); do /bin/true && ok=$((ok + 1)); done; echo "forked $ok"');
    const { r, out } = await bomb;
    polling = false;
    await poll;
    assert.deepEqual(r, { kind: 'exited', code: 0, diskFull: false, outputs: [] });
    assert.match(out, /^bomb-over$/m, 'the run went on after the bomb');
    assert.ok(max <= limits.processes, `never more than the limit of ${limits.processes} (${max} seen)`);
    assert.match(other.out, /^forked 50$/m, "the bomb did not take the other sandbox's processes");
    // Nothing of the bomb outlives its sandbox: bubblewrap exits as soon as its init reports the command's status,
    // while the kernel is still killing the rest of the ended pid namespace (hundreds of processes, on a loaded
    // machine not at once); they go without anyone signalling them.
    await until(async () => (await countProcesses(marker)) === 0);
  });

  test('200,000 lines under set -x come back whole and in order (one pipe for stdout and stderr)', async () => {
    const { r, out } = await sandbox(
      'set -x; for ((i = 1; i <= 200000; i++)); do echo "line $i of the noisy log"; done',
      { limits: { ...limits, logBytes: 64 * 1024 ** 2 } },
    );
    assert.equal(r.kind === 'exited' && r.code, 0);
    const lines = out.split('\n').filter((l) => l !== '');
    let expect = 1;
    for (let i = 0; i < lines.length; i++) {
      if (lines[i]!.startsWith('+')) continue;
      assert.equal(lines[i], `line ${expect} of the noisy log`, `line ${i + 1}`);
      assert.equal(lines[i - 1], `+ echo 'line ${expect} of the noisy log'`, `trace before line ${i + 1}`);
      expect++;
    }
    assert.equal(expect - 1, 200000);
  });

  test('a sandbox started ahead of its task prepares before its inputs come; its wall-clock limit counts from the task', async () => {
    const input = path.join(dir, 'in-ahead');
    await mkdir(input);
    await writeFile(path.join(input, 'data.txt'), 'the task input\n');
    const ahead = startSandbox({
      identity,
      limits: { ...limits, timeoutMs: 1000 },
      inside: 'user',
      files: { '/run/lenix-list': 'from the caller\n' },
      prepare: 'echo "prepared: in/ holds $(ls in | wc -l) files"; cp /run/lenix-list prepared.txt',
      input: true,
      command: ['bash', '-c', 'cat prepared.txt in/data.txt'],
      env: { PATH, HOME: SANDBOX_WORK },
      hostname: 'lenix-test',
    });
    // Longer than its limit: waiting for a task is not part of it.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(ahead.ended, false, 'it waits for its task');
    let out = '';
    const r = await ahead.run({
      inputDir: input,
      onOutput: (c) => {
        out += c.toString('utf8');
      },
    });
    assert.deepEqual(r, { kind: 'exited', code: 0, diskFull: false, outputs: [] });
    assert.equal(out, 'prepared: in/ holds 0 files\nfrom the caller\nthe task input\n');
    await assert.rejects(ahead.run({ onOutput: () => undefined }), /one task/);

    const failing = startSandbox({
      identity,
      limits,
      inside: 'user',
      prepare: 'echo cannot; exit 3',
      input: true,
      command: ['bash', '-c', 'echo COMMAND-RAN'],
      env: { PATH, HOME: SANDBOX_WORK },
      hostname: 'lenix-test',
    });
    await until(async () => failing.ended);
    let said = '';
    const f = await failing.run({
      inputDir: input,
      onOutput: (c) => {
        said += c.toString('utf8');
      },
    });
    assert.deepEqual(f, { kind: 'exited', code: 125, diskFull: false, outputs: [] });
    assert.match(said, /^cannot\nlenix: the sandbox could not be prepared\n/);
    assert.doesNotMatch(said, /COMMAND-RAN/);
  });

  test('the wall-clock limit kills the whole process tree', async () => {
    const started = Date.now();
    const { r } = await sandbox('sleep 1000 & sleep 1000; wait', { limits: { ...limits, timeoutMs: 300 } });
    assert.equal(r.kind === 'killed' && r.why, 'timeout');
    assert.ok(Date.now() - started < 10_000);
  });

  test('the test root is root only in its own user namespace: overlay, chroot and chown work, the host stays out of reach', async () => {
    if (identity.kind !== 'system-user' || !identity.subordinate)
      return assert.fail('run as root with the lenix-build user and its subordinate ids (scripts/bootstrap.sh)');
    const { r, out } = await sandbox(
      [
        'cat /proc/self/uid_map',
        'mkdir -p r/usr u w r/proc && mount -t overlay overlay -o lowerdir=/usr,upperdir=$PWD/u,workdir=$PWD/w r/usr && echo overlay-ok',
        'mount -t proc proc r/proc && echo proc-ok',
        'for d in bin lib lib64 sbin; do ln -s usr/$d r/$d; done',
        'chroot r /bin/sh -c "echo in-chroot"',
        'touch f && chown 4242:4343 f && stat -c owner=%u:%g f',
        'mount -o remount,rw /usr 2>/dev/null && echo REMOUNTED-USR',
        'umount /tmp 2>/dev/null && echo UNMOUNTED-TMP',
        'cat /etc/shadow 2>/dev/null && echo READ-SHADOW',
        'unshare -Ur true 2>/dev/null && echo NESTED-USERNS',
        'echo 9 > /proc/sys/user/max_user_namespaces 2>/dev/null && echo RAISED-USERNS',
        'unshare -Ur true 2>/dev/null && echo NESTED-USERNS',
        'true',
      ].join('\n'),
      { inside: 'root' },
    );
    assert.equal(r.kind === 'exited' && r.code, 0);
    assert.match(
      out,
      new RegExp(`^\\s*0\\s+${identity.uid}\\s+1$`, 'm'),
      'inside root is the unprivileged sandbox user outside',
    );
    assert.match(out, new RegExp(`^\\s*1\\s+${identity.subordinate.uid}\\s+${identity.subordinate.count}$`, 'm'));
    for (const ok of ['overlay-ok', 'proc-ok', 'in-chroot', 'owner=4242:4343']) assert.match(out, new RegExp(ok));
    for (const bad of ['REMOUNTED-USR', 'UNMOUNTED-TMP', 'READ-SHADOW', 'NESTED-USERNS', 'RAISED-USERNS'])
      assert.doesNotMatch(out, new RegExp(bad));
  });
});

async function until(cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The bomb's own processes on this host: `bash -c 'b() ...' MARKER` (not the shells and bwrap that started it). */
async function countProcesses(marker: string): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0] === 'bash' && argv[2]?.startsWith('b() {') && argv[3] === marker) n++;
  }
  return n;
}
