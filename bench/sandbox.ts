/**
 * Sandbox overhead (issue 11): the hardened sandbox (an unprivileged user in new user/PID/network namespaces,
 * a root of /usr and a generated /etc, a size-limited tmpfs work folder, inputs and outputs as tar streams, a
 * pids cgroup) against the sandbox it replaced (bubblewrap as root with the host's / read-only and the work
 * folder bound read-write), side by side in one run: an empty command, and rpmbuild of a trivial noarch
 * package and of a small C package (`rpmbuild -ba`, outputs collected).
 *
 *   npm run build && node dist/bench/sandbox.js [--runs 15]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { resolveSandboxIdentity } from '../src/rpm/sandbox-identity.js';
import { DEFAULT_LIMITS, SANDBOX_WORK, runSandboxed } from '../src/rpm/sandbox.js';
import { specWith } from '../test/support/cli.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const RUNS = Number(args.runs);

/** The sandbox before issue 11, as it was: root, the host's / read-only, the work folder read-write. */
function legacy(work: string, command: string[]): Promise<number> {
  const bwrap = [
    '--die-with-parent',
    '--new-session',
    '--unshare-net',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    'lenix-build',
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
    '--tmpfs',
    '/var/tmp',
    '--tmpfs',
    '/run',
    '--tmpfs',
    '/dev/shm',
    '--tmpfs',
    os.homedir(),
    '--bind',
    work,
    SANDBOX_WORK,
    '--remount-ro',
    os.homedir(),
    '--chdir',
    SANDBOX_WORK,
    '--clearenv',
    '--setenv',
    'PATH',
    '/usr/bin:/bin',
    '--setenv',
    'HOME',
    os.homedir(),
    '--',
    ...command,
  ];
  return new Promise((resolve, reject) => {
    const c = spawn('prlimit', [`--as=${DEFAULT_LIMITS.memoryBytes}`, '--', '/usr/bin/bwrap', ...bwrap], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    c.stdout.resume();
    c.stderr.resume();
    c.on('error', reject);
    c.on('close', (code) => resolve(code ?? -1));
  });
}

const SPECS: Record<string, string> = {
  noarch: specWith('trivial', 'echo trivial'),
  c: specWith('small-c', 'printf "int main(void) { return 0; }\\n" > m.c\ngcc -O2 -o m m.c', { noarch: false }).replace(
    'echo ok > %{buildroot}/usr/share/small-c/ok',
    'install -m 0755 m %{buildroot}/usr/share/small-c/ok',
  ),
};

const rpmbuild = (top: string, spec: string) => [
  'rpmbuild',
  '-ba',
  '--define',
  `_topdir ${top}`,
  '--define',
  `_rpmdir ${top}/out`,
  '--define',
  `_srcrpmdir ${top}/out`,
  '--define',
  `_dbpath ${top}/rpmdb`,
  spec,
];

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!;

async function main(): Promise<void> {
  const identity = await resolveSandboxIdentity();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-sandbox-'));
  const cases: { name: string; before: () => Promise<void>; after: () => Promise<void> }[] = [];
  let n = 0;
  const fresh = async () => {
    const d = path.join(dir, String(++n));
    await mkdir(d, { recursive: true });
    return d;
  };
  cases.push({
    name: 'empty command (true)',
    before: async () => {
      if ((await legacy(await fresh(), ['true'])) !== 0) throw new Error('legacy sandbox failed');
    },
    after: async () => {
      const r = await runSandboxed({
        identity,
        limits: DEFAULT_LIMITS,
        inside: 'user',
        command: ['true'],
        env: { PATH: '/usr/bin:/bin' },
        hostname: 'lenix-build',
        onOutput: () => undefined,
      });
      if (r.kind !== 'exited' || r.code !== 0) throw new Error('sandbox failed');
    },
  });
  for (const [kind, text] of Object.entries(SPECS)) {
    cases.push({
      name: `rpmbuild -ba, ${kind === 'c' ? 'small C package' : 'trivial noarch package'}`,
      before: async () => {
        const w = await fresh();
        await writeFile(path.join(w, 'p.spec'), text);
        if ((await legacy(w, rpmbuild(`${SANDBOX_WORK}/top`, `${SANDBOX_WORK}/p.spec`))) !== 0)
          throw new Error('legacy rpmbuild failed');
        if ((await readdir(path.join(w, 'top', 'out'))).length === 0) throw new Error('no output');
      },
      after: async () => {
        const input = await fresh();
        const out = await fresh();
        await writeFile(path.join(input, 'p.spec'), text);
        const r = await runSandboxed({
          identity,
          limits: DEFAULT_LIMITS,
          inside: 'user',
          command: rpmbuild(`${SANDBOX_WORK}/top`, `${SANDBOX_WORK}/in/p.spec`),
          env: { PATH: '/usr/bin:/bin', HOME: SANDBOX_WORK },
          hostname: 'lenix-build',
          inputDir: input,
          output: { from: `${SANDBOX_WORK}/top/out`, to: out, accept: (f) => f.endsWith('.rpm') },
          onOutput: () => undefined,
        });
        if (r.kind !== 'exited' || r.code !== 0 || r.outputs.length < 2)
          throw new Error(`rpmbuild failed: ${JSON.stringify(r)}`);
      },
    });
  }
  const rows: string[] = [];
  for (const c of cases) {
    for (let i = 0; i < 2; i++) {
      await c.before();
      await c.after();
    }
    const before: number[] = [];
    const after: number[] = [];
    // Interleaved, so that drift in the machine's load hits both alike.
    for (let i = 0; i < RUNS; i++) {
      before.push(await timed(c.before));
      after.push(await timed(c.after));
    }
    rows.push(
      `| ${c.name} | ${median(before).toFixed(1)} | ${p90(before).toFixed(1)} | ${median(after).toFixed(1)} | ${p90(after).toFixed(1)} | ${(median(after) / median(before)).toFixed(3)}× |`,
    );
  }
  await rm(dir, { recursive: true, force: true });
  process.stdout.write(
    `Sandbox overhead, ${RUNS} runs each, ${os.cpus().length} cores, Node ${process.version}, ${identity.kind}\n\n`,
  );
  process.stdout.write(
    '| case | before median ms | before p90 ms | hardened median ms | hardened p90 ms | hardened / before |\n| --- | ---: | ---: | ---: | ---: | ---: |\n',
  );
  process.stdout.write(`${rows.join('\n')}\n`);
}

await main();
