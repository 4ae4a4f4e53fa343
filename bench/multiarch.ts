/**
 * Multi-arch builds (issue 17), side by side in one run on this x86_64 machine:
 *  1. Per arch, `rpmbuild --rebuild` of a trivial C package (the hello-c sample) and a compile-heavy one (one
 *     generated C file of 200 functions at -O2) in the Lenix sandbox: x86_64 and x86_64_v2 natively, aarch64,
 *     ppc64le and s390x in their emulated system roots (qemu-user). The field's reference is plain rpmbuild on
 *     the host (x86_64, no sandbox) and, for a foreign arch, plain `chroot ROOT rpmbuild` (mock --forcearch's way).
 *  2. End to end: hello-c on all five arches in one Lenix build, one node per arch, on this machine's 2 cores,
 *     against a plain shell loop running those five rpmbuilds one after another.
 *
 *   npm run build && node dist/bench/multiarch.js [--runs 3]   (as root; roots from the test cache, made if missing)
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { resolveSandboxIdentity } from '../src/rpm/sandbox-identity.js';
import { DEFAULT_LIMITS, SANDBOX_WORK, runSandboxed } from '../src/rpm/sandbox.js';
import { x86LevelArgs } from '../src/agents/builder/x86-level-args.js';
import { gitRepo, until } from '../test/support/cli.js';
import { FOREIGN_ARCHES, cachedRoots } from '../test/support/system-roots.js';
import { startSystem } from '../test/support/system.js';

const run = promisify(execFile);
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const RUNS = Number(args.runs);
const SAMPLES = fileURLToPath(new URL('../../samples/', import.meta.url));
const FOREIGN = FOREIGN_ARCHES;
const ARCHES = ['x86_64', 'x86_64_v2', ...FOREIGN] as const;

const HEAVY = `Name: heavy-c
Version: 1
Release: 1
Summary: one generated C file of 200 functions at -O2
License: MIT
%global debug_package %{nil}
%description
Compile-heavy benchmark package.
%build
{ echo '#include <stdio.h>'
  for i in $(seq 1 200); do
    echo "static unsigned long f$i(unsigned long x) { unsigned long s = 0; for (unsigned long k = 0; k < x; k++) s += (k * $i) ^ (s >> 3); return s; }"
  done
  echo 'int main(void) { unsigned long t = 0;'
  for i in $(seq 1 200); do echo "t += f$i($i);"; done
  echo 'printf("%lu\\\\n", t); return 0; }'; } > heavy.c
gcc %{optflags} -O2 -o heavy-c heavy.c
%install
install -D -m755 heavy-c %{buildroot}%{_bindir}/heavy-c
%files
%{_bindir}/heavy-c
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function time(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function srpm(dir: string, name: string, spec: string, sources: string | null): Promise<string> {
  const top = path.join(dir, `top-${name}`);
  await mkdir(path.join(top, 'SOURCES'), { recursive: true });
  if (sources) await cp(sources, path.join(top, 'SOURCES'), { recursive: true });
  await writeFile(path.join(top, `${name}.spec`), spec);
  await run('rpmbuild', [
    '-bs',
    '--define',
    `_topdir ${top}`,
    '--define',
    `_srcrpmdir ${dir}`,
    path.join(top, `${name}.spec`),
  ]);
  return (await readdir(dir)).find((f) => f.startsWith(`${name}-`) && f.endsWith('.src.rpm'))!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-multiarch-'));
  await import('node:fs/promises').then((fs) => fs.chmod(dir, 0o755));
  const roots = await cachedRoots(FOREIGN);
  const identity = await resolveSandboxIdentity();
  const hello = await srpm(
    dir,
    'hello-c',
    await readFile(path.join(SAMPLES, 'hello-c/SPECS/hello-c.spec'), 'utf8'),
    path.join(SAMPLES, 'hello-c/SOURCES'),
  );
  const heavy = await srpm(dir, 'heavy-c', HEAVY, null);
  const input = path.join(dir, 'in');
  await mkdir(input);
  for (const f of [hello, heavy]) await cp(path.join(dir, f), path.join(input, f));

  /** rpmbuild --rebuild in the Lenix sandbox (the node's command, minus the server). */
  const sandboxed = async (arch: string, file: string) => {
    const root = (roots as Record<string, string>)[arch];
    const levels = root ? [] : await x86LevelArgs(arch, input, `${SANDBOX_WORK}/in`);
    let log = '';
    const r = await runSandboxed({
      identity,
      limits: DEFAULT_LIMITS,
      inside: 'user',
      command: [
        'rpmbuild',
        '--rebuild',
        '--nodeps',
        ...levels,
        '--define',
        `_topdir ${SANDBOX_WORK}/top`,
        '--define',
        `_dbpath ${SANDBOX_WORK}/rpmdb`,
        '--target',
        arch,
        `${SANDBOX_WORK}/in/${file}`,
      ],
      env: { PATH: '/usr/bin:/bin', HOME: SANDBOX_WORK, LANG: 'C.UTF-8' },
      hostname: 'lenix-build',
      inputDir: input,
      ...(root ? { systemRoot: root } : {}),
      onOutput: (c) => {
        log = (log + c.toString()).slice(-3000);
      },
    });
    if (r.kind !== 'exited' || r.code !== 0) throw new Error(`${arch} ${file}: ${log}`);
  };
  /** The field's way: plain rpmbuild (on the host, or chrooted into the foreign root as mock --forcearch does). */
  const plain = async (arch: string, file: string) => {
    const root = (roots as Record<string, string>)[arch];
    const work = await mkdtemp(path.join(root ? path.join(root, 'tmp') : dir, 'plain-'));
    const inside = root ? `/${path.relative(root, work)}` : work;
    await cp(path.join(input, file), path.join(work, file));
    const cmd = [
      'rpmbuild',
      '--rebuild',
      '--nodeps',
      ...(root ? [] : await x86LevelArgs(arch, work, work)),
      '--define',
      `_topdir ${inside}/top`,
      '--define',
      `_dbpath ${inside}/rpmdb`,
      '--target',
      arch,
      `${inside}/${file}`,
    ];
    try {
      if (root) await run('chroot', [root, ...cmd], { maxBuffer: 64 * 1024 * 1024 });
      else await run(cmd[0]!, cmd.slice(1), { maxBuffer: 64 * 1024 * 1024 });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  };

  console.log(`per-arch rpmbuild --rebuild, median of ${RUNS} (s): Lenix sandbox | plain rpmbuild | ratio`);
  const rows: string[] = [];
  const native: Record<string, number> = {};
  for (const [label, file] of [
    ['hello-c (trivial)', hello],
    ['heavy-c (200 functions -O2)', heavy],
  ] as const) {
    for (const arch of ARCHES) {
      const lx: number[] = [];
      const pl: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        lx.push(await time(() => sandboxed(arch, file)));
        pl.push(await time(() => plain(arch, file)));
      }
      const m = median(lx);
      if (arch === 'x86_64') native[file] = m;
      const row = `| ${label} | ${arch}${arch in roots ? ' (emulated)' : ''} | ${m.toFixed(2)} | ${median(pl).toFixed(2)} | ${(m / median(pl)).toFixed(2)}× | ${(m / native[file]!).toFixed(1)}× |`;
      rows.push(row);
      console.log(row);
    }
  }

  // End to end: one build, five arches, one node per arch.
  const sysDir = path.join(dir, 'system');
  const sys = await startSystem(sysDir, {
    serverArgs: ARCHES.flatMap((a) => ['--arch', a]),
    nodeArgs: ['--arch', 'x86_64', '--arch', 'x86_64_v2'],
    extraNodes: FOREIGN.map((a) => ['--root', roots[a]!]),
  });
  let e2e = 0;
  try {
    const files: Record<string, string> = {
      'SPECS/hello-c.spec': await readFile(path.join(SAMPLES, 'hello-c/SPECS/hello-c.spec'), 'utf8'),
      'SOURCES/hello.c': await readFile(path.join(SAMPLES, 'hello-c/SOURCES/hello.c'), 'utf8'),
      'SOURCES/LICENSE': await readFile(path.join(SAMPLES, 'hello-c/SOURCES/LICENSE'), 'utf8'),
    };
    await gitRepo(path.join(sysDir, 'repos', 'hello-c'), files);
    await sys.cli('source', 'add', 'hello-c', path.join(sysDir, 'repos', 'hello-c'));
    e2e = await time(async () => {
      const { id } = JSON.parse((await sys.cli('build', 'hello-c', '--json')).stdout) as { id: number };
      const b = await until(
        'the build',
        async () => {
          const x = await sys.api.json<{ state: string }>('GET', `/api/v1/builds/${id}`);
          return ['succeeded', 'failed', 'cancelled'].includes(x.state) ? x : null;
        },
        30 * 60_000,
      );
      if (b.state !== 'succeeded') throw new Error(`build ${id} ${b.state}`);
    });
  } finally {
    await sys.stop();
  }
  const shell = await time(async () => {
    await run('rpmbuild', [
      '-bs',
      '--define',
      `_topdir ${dir}/e2e-top`,
      '--define',
      `_srcrpmdir ${dir}/e2e`,
      '--define',
      `_sourcedir ${path.join(SAMPLES, 'hello-c/SOURCES')}`,
      path.join(SAMPLES, 'hello-c/SPECS/hello-c.spec'),
    ]);
    for (const arch of ARCHES) await plain(arch, hello);
  });
  console.log(
    `hello-c on ${ARCHES.length} arches end to end: Lenix (commit → every arch built, 1 node per arch) ${e2e.toFixed(1)} s; plain shell loop of the ${ARCHES.length} rpmbuilds ${shell.toFixed(1)} s; ratio ${(e2e / shell).toFixed(2)}×`,
  );
  await rm(dir, { recursive: true, force: true });
}

await main();
