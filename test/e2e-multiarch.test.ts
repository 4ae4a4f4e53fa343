import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildHostBase } from '../src/agents/kit/host-base.js';
import { gitRepo, specWith, until } from './support/cli.js';
import { MARKER_DIRS, attack, hostListener, secretsFound } from './support/hostile.js';
import { DnfClient } from './support/dnf.js';
import { FOREIGN_ARCHES, cachedRoots } from './support/system-roots.js';
import { type System, startSystem } from './support/system.js';

const run = promisify(execFile);
const SAMPLES = fileURLToPath(new URL('../../samples/', import.meta.url));
const FOREIGN = FOREIGN_ARCHES;
const ALL = ['x86_64', 'x86_64_v2', ...FOREIGN] as const;
/** What `file` says of an executable of each arch. */
const MACHINE: Record<(typeof ALL)[number], RegExp> = {
  x86_64: /ELF 64-bit LSB pie executable, x86-64/,
  x86_64_v2: /ELF 64-bit LSB pie executable, x86-64/,
  aarch64: /ELF 64-bit LSB pie executable, ARM aarch64/,
  ppc64le: /ELF 64-bit LSB pie executable, 64-bit PowerPC or cisco 7500, OpenPOWER ELF V2 ABI/,
  s390x: /ELF 64-bit MSB pie executable, IBM S\/390/,
};

/** Names, sizes and times of every file under the root's /usr and /etc: a change to either shows. */
async function rootDigest(root: string): Promise<string> {
  const { stdout } = await run(
    'bash',
    ['-c', 'cd "$1" && find usr etc -printf "%p %s %T@\\n" | sort | sha256sum', 'x', root],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return stdout.trim();
}

type Task = { id: number; kind: string; arch: string; state: string; reason: string | null };
type Build = { id: number; state: string; tasks: (Task & { artifacts: { name: string; sha256: string }[] })[] };

/**
 * Issue 17: every architecture ALBS ships, on one x86_64 machine. A native node builds x86_64 and its x86_64_v2
 * flavour; three nodes build in emulated Debian roots (aarch64, ppc64le, s390x: `lenix node root create`, cached
 * between runs of the suite); the tester tests each arch's packages in a root of that arch. Then one release
 * publishes every arch's tree at once, the noarch sample in each; a dnf client of aarch64 installs and runs its
 * package under qemu; an advisory lists every arch's NEVRA and each client sees its own.
 */
describe('multi-arch builds on emulated nodes', {
  skip: os.arch() !== 'x64' && 'written for an x86-64 host',
  timeout: 45 * 60_000,
}, () => {
  let dir: string;
  let sys: System;
  let roots: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-multiarch-'));
    roots = await cachedRoots(FOREIGN);
    sys = await startSystem(dir, {
      serverArgs: ALL.flatMap((a) => ['--arch', a]),
      nodeArgs: ['--arch', 'x86_64', '--arch', 'x86_64_v2'],
      extraNodes: FOREIGN.map((a) => ['--root', roots[a]!]),
      testerArgs: FOREIGN.flatMap((a) => ['--root', roots[a]!]),
    });
  });

  after(async () => {
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const buildToEnd = async (name: string, files: Record<string, string>) => {
    await gitRepo(path.join(dir, 'repos', name), files);
    await sys.cli('source', 'add', name, path.join(dir, 'repos', name));
    const { id } = JSON.parse((await sys.cli('build', name, '--json')).stdout) as { id: number };
    let last: Build | null = null;
    return until(
      `build ${name} and its tests to end`,
      async () => {
        last = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
        const test = last.tasks.find((t) => t.kind === 'test');
        const ended = (s: string) => ['succeeded', 'failed', 'cancelled'].includes(s);
        return ended(last.state) && (last.state !== 'succeeded' || (test && ended(test.state))) ? last : null;
      },
      20 * 60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(last)}\n${JSON.stringify(sys.output()).slice(-4000)}`);
    });
  };
  const sample = async (folder: string) => {
    const files: Record<string, string> = {};
    for (const f of await readdir(path.join(SAMPLES, folder), { recursive: true, withFileTypes: true }))
      if (f.isFile()) {
        const full = path.join(f.parentPath, f.name);
        files[path.relative(path.join(SAMPLES, folder), full)] = await readFile(full, 'utf8');
      }
    return files;
  };

  let helloId = 0;
  let dataId = 0;

  test('hello-c in one build: five binary RPMs, each binary of its machine, x86_64_v2 marked x86-64-v2', async () => {
    const build = await buildToEnd('hello-c', await sample('hello-c'));
    helloId = build.id;
    const binaries = build.tasks.filter((t) => t.kind === 'binary');
    assert.equal(build.state, 'succeeded', JSON.stringify(binaries.map((t) => [t.arch, t.state, t.reason])));
    assert.deepEqual(binaries.map((t) => t.arch).sort(), [...ALL].sort());
    for (const t of binaries) {
      const rpm = t.artifacts.find((a) => a.name.endsWith(`.${t.arch}.rpm`));
      assert.ok(rpm, `${t.arch}: ${t.artifacts.map((a) => a.name).join(' ')}`);
      const unpacked = path.join(dir, 'unpacked', t.arch);
      await mkdir(unpacked, { recursive: true });
      const file = path.join(unpacked, rpm.name);
      await sys.api.download(`/api/v1/artifacts/${rpm.sha256}`, file, rpm.sha256);
      await run('bash', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet', 'x', file], { cwd: unpacked });
      const binary = path.join(unpacked, 'usr/bin/hello-c');
      const { stdout } = await run('file', ['-b', binary]);
      assert.match(stdout, MACHINE[t.arch as (typeof ALL)[number]], `${t.arch}: ${stdout}`);
      const notes = (await run('readelf', ['-n', binary])).stdout;
      if (t.arch === 'x86_64_v2') assert.match(notes, /x86 ISA needed: .*x86-64-v2/, notes);
      else assert.doesNotMatch(notes, /x86-64-v2/);
      // Foreign builds say where they ran.
      if ((FOREIGN as readonly string[]).includes(t.arch)) {
        const log = await (await fetch(`${sys.url}/api/v1/tasks/${t.id}/log`)).text();
        assert.match(log, new RegExp(`Debian GNU/Linux 12 \\(bookworm\\) ${t.arch} root`));
        assert.match(log, /arch check: every executable and shared library is /);
      }
    }
    // The tester tested each foreign arch in a root of that arch; only x86_64_v2 (this rpm cannot install it) is not.
    const testTask = build.tasks.find((t) => t.kind === 'test')!;
    const testLog = await (await fetch(`${sys.url}/api/v1/tasks/${testTask.id}/log`)).text();
    assert.equal(testTask.state, 'succeeded', testLog.slice(-3000));
    for (const a of FOREIGN) assert.match(testLog, new RegExp(`installed with gpgcheck=1: hello-c-1\\.2-1\\.${a}\\b`));
    const untested = (
      await sys.api.json<{ tasks: { id: number; untested?: { arch: string }[] }[] }>(
        'GET',
        `/api/v1/builds/${build.id}`,
      )
    ).tasks.find((t) => t.id === testTask.id)?.untested;
    assert.deepEqual(
      untested?.map((u) => u.arch),
      ['x86_64_v2'],
    );
  });

  test('a hostile %build in the emulated aarch64 root: nothing escapes, no capability, the root stays as it was', async () => {
    const { host, hits, close } = await hostListener('ma');
    const before = await rootDigest(roots['aarch64']!);
    try {
      const attackScript = `${attack('emulated', host, { unmount: true })}
touch /usr/bin/lenix-hostile 2>/dev/null && echo "HOSTILE emulated ESCAPE wrote into the root's /usr"
echo "HOSTILE emulated machine $(uname -m)"
`;
      const spec = specWith('hostile-emulated', 'bash %{SOURCE1}', {
        noarch: false,
        extra: 'Source1: attack.sh\nExclusiveArch: aarch64\n%global debug_package %{nil}\n',
      });
      const build = await buildToEnd('hostile-emulated', { 'hostile-emulated.spec': spec, 'attack.sh': attackScript });
      const task = build.tasks.find((t) => t.kind === 'binary')!;
      assert.equal(task.arch, 'aarch64');
      const log = await (await fetch(`${sys.url}/api/v1/tasks/${task.id}/log`)).text();
      assert.match(log, /HOSTILE emulated DONE/, log.slice(-3000));
      assert.match(log, /HOSTILE emulated machine aarch64/, 'the attack ran as aarch64 code, under qemu');
      assert.match(log, /HOSTILE emulated CapEff: 0000000000000000/);
      assert.doesNotMatch(log, /HOSTILE \w+ (ESCAPE|PRIV)/);
      assert.deepEqual(secretsFound(log), []);
      assert.deepEqual(
        MARKER_DIRS.map((d) => path.join(d, 'lenix-hostile-emulated')).filter((f) => existsSync(f)),
        [],
      );
      assert.deepEqual(hits, [], 'nothing reached the host listener');
      assert.equal(await rootDigest(roots['aarch64']!), before, "the root's /usr and /etc are unchanged");
    } finally {
      close();
    }
  });

  test('a noarch sample has one task', async () => {
    const build = await buildToEnd('lenix-hello-data', await sample('lenix-hello-data'));
    dataId = build.id;
    assert.equal(build.state, 'succeeded');
    assert.deepEqual(
      build.tasks.filter((t) => t.kind === 'binary').map((t) => t.arch),
      ['noarch'],
    );
  });

  test('one release publishes every arch; noarch lands in each tree; an aarch64 dnf client installs and runs hello-c; each sees its own advisory packages', async () => {
    assert.ok(helloId && dataId, 'the builds above ran');
    await sys.cli('repo', 'create', 'multi', ...ALL.flatMap((a) => ['--arch', a]));
    const adv = JSON.parse(
      (
        await sys.cli(
          'errata',
          'create',
          '--repo',
          'multi',
          '--type',
          'security',
          '--severity',
          'Moderate',
          '--title',
          'hello-c on every arch',
          '--cve',
          'CVE-2026-17017',
          '--from-build',
          String(helloId),
          '--json',
        )
      ).stdout,
    ) as { id: string; packages: { nevra: string }[] };
    assert.deepEqual(adv.packages.map((p) => p.nevra).sort(), ALL.map((a) => `hello-c-1.2-1.${a}`).sort());
    await sys.cli('errata', 'approve', adv.id);
    const release = JSON.parse(
      (
        await sys.cli(
          'release',
          String(helloId),
          String(dataId),
          '--to',
          'multi',
          '--approve',
          '--override',
          'x86_64_v2 is not installable on this test host',
          '--wait',
          '--json',
        )
      ).stdout,
    ) as { state: string };
    assert.equal(release.state, 'published');
    for (const a of ALL) {
      for (const pkg of [`hello-c-1.2-1.${a}.rpm`, 'lenix-hello-data-1.0-1.noarch.rpm']) {
        const r = await fetch(`${sys.url}/repos/multi/${a}/Packages/${pkg}`, { method: 'HEAD' });
        assert.equal(r.status, 200, `${a}/Packages/${pkg}`);
      }
      const other = ALL.find((b) => b !== a)!;
      const r = await fetch(`${sys.url}/repos/multi/${a}/Packages/hello-c-1.2-1.${other}.rpm`, { method: 'HEAD' });
      assert.equal(r.status, 404, `${a} holds no ${other} package`);
    }

    // Real dnf clients of the published repository (gpgcheck=1, repo_gpgcheck=1 from the .repo file).
    const repoFile = await (await fetch(`${sys.url}/repos/multi.repo`)).text();
    assert.match(repoFile, /^gpgcheck=1$/m);
    assert.match(repoFile, /^repo_gpgcheck=1$/m);
    const client = async (name: string, arch: string, root?: string) => {
      const reposDir = path.join(dir, 'clients', name, 'repos.d');
      await mkdir(reposDir, { recursive: true });
      await writeFile(path.join(reposDir, 'multi.repo'), repoFile);
      const c = new DnfClient(
        path.join(dir, 'clients', name),
        reposDir,
        root ? { systemRoot: root, forcearch: arch } : {},
      );
      const base = await buildHostBase(path.join(dir, 'clients', name, 'base'), root ?? '/');
      await c.base(path.join(base, 'lenix-host-base-1-1.noarch.rpm'));
      return c;
    };
    const arm = await client('arm', 'aarch64', roots['aarch64']);
    const x86 = await client('x86', 'x86_64');
    for (const [c, arch] of [
      [arm, 'aarch64'],
      [x86, 'x86_64'],
    ] as const) {
      const installed = await c.dnf('install hello-c lenix-hello-data');
      assert.equal(installed.code, 0, installed.out);
      assert.match(installed.out, new RegExp(`hello-c-1\\.2-1\\.${arch}`));
      const q = await c.sh('rpm --root "$ROOT" -q --qf "%{ARCH}\\n" hello-c');
      assert.equal(q.out.trim(), arch);
      const ran = await c.sh('chroot "$ROOT" /usr/bin/hello-c');
      assert.equal(ran.code, 0, ran.out);
      assert.match(ran.out, /Hello from hello-c, built by Lenix\./);
      // The advisory as each arch's updateinfo has it: its own package, no other arch's.
      const list = await c.dnf('updateinfo list --all --security');
      assert.equal(list.code, 0, list.out);
      // `--all` marks what is installed with "i".
      const lines = list.out.split('\n').filter((l) => l.includes(`${adv.id} `));
      assert.deepEqual(
        lines.map((l) => l.trim().split(/\s+/)),
        [['i', adv.id, 'Moderate/Sec.', `hello-c-1.2-1.${arch}`]],
        list.out,
      );
    }
    // The arm client's binary is an aarch64 one, run by qemu: its loader is aarch64's.
    const loader = await arm.sh('file -b "$ROOT/usr/bin/hello-c"');
    assert.match(loader.out, /ARM aarch64.*interpreter \/lib\/ld-linux-aarch64\.so\.1/);
  });
});
