/**
 * The whole pipeline (issue 3): N small packages from commit to a published, signed repository, Lenix against
 * a plain shell script that runs the same tools one after the other (rpmbuild in bubblewrap, rpmsign, a dnf
 * install test, createrepo_c, gpg), in the same run; Lenix with one and with two build nodes.
 *
 *   npm run build && node dist/bench/pipeline.js [--packages 20] [--tester-jobs 2]
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { buildHostBase } from '../src/agents/kit/host-base.js';
import { generateKey } from '../src/crypto/gpg.js';
import { Proc, freePort, gitRepo, specWith } from '../test/support/cli.js';
import { forksSinceBoot, liveChildrenCpu, median, processCpu } from './support/measure.js';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: { packages: { type: 'string', default: '20' }, 'tester-jobs': { type: 'string', default: '2' } },
});
const N = Number(args.packages);
/** Test runs the tester takes at once (its `--jobs`). */
const TESTER_JOBS = String(Math.max(1, Number(args['tester-jobs'])));

async function sources(dir: string): Promise<string[]> {
  const repos: string[] = [];
  for (let i = 0; i < N; i++) {
    const name = `pkg${String(i).padStart(2, '0')}`;
    const repo = path.join(dir, 'src', name);
    await gitRepo(repo, { [`${name}.spec`]: specWith(name, `echo building ${name}`) });
    repos.push(repo);
  }
  return repos;
}

/** The baseline: the same tools, one after the other, as a packager's shell script would run them. */
function script(): string {
  return String.raw`#!/bin/bash
set -euo pipefail
D=$1; KEYS=$2; FPR=$3; HB=$4; shift 4
mkdir -p "$D/out" "$D/repo/x86_64/Packages" "$D/home"
echo '%_dbpath /var/lib/rpm' > "$D/home/.rpmmacros"
for repo in "$@"; do
  name=$(basename "$repo"); w="$D/w/$name"; mkdir -p "$w/top" "$w/out"
  git -C "$repo" archive HEAD | tar -x -C "$w"
  SB=(bwrap --die-with-parent --unshare-net --unshare-pid --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /var/tmp --bind "$w" "$w" --clearenv --setenv PATH /usr/bin:/bin --setenv HOME /nonexistent)
  "${'$'}{SB[@]}" rpmbuild -bs --define "_topdir $w/top" --define "_sourcedir $w" --define "_srcrpmdir $w/out" "$w/$name.spec" >/dev/null
  "${'$'}{SB[@]}" rpmbuild --rebuild --nodeps --define "_topdir $w/top" --define "_rpmdir $w/out" "$w"/out/*.src.rpm >/dev/null
  rpmsign --addsign --rpmv3 --define "_gpg_name $FPR" --define "__gpg /usr/bin/gpg" --define "_gpg_path $KEYS" "$w"/out/*.rpm "$w"/out/*/*.rpm >/dev/null
  cp "$w"/out/noarch/*.rpm "$D/repo/x86_64/Packages/"
  # install test: a fresh root with the host base, the package installed and removed by dnf
  mkdir -p "$w/t/repo" && cp "$w"/out/noarch/*.rpm "$w/t/repo/" && createrepo_c -q "$w/t/repo"
  printf '[t]\nname=t\nbaseurl=file://%s\ngpgcheck=0\n[hb]\nname=hb\nbaseurl=file://%s\ngpgcheck=0\n' "$w/t/repo" "$HB" > "$w/t/t.repo"
  mkdir -p "$w/t/reposd" && mv "$w/t/t.repo" "$w/t/reposd/"
  HOME="$D/home" dnf -y -q --installroot="$w/t/root" --releasever=9 --setopt=reposdir="$w/t/reposd" --setopt=cachedir="$w/t/cache" --disableplugin='*' install lenix-host-base "$name" >/dev/null
  HOME="$D/home" dnf -y -q --installroot="$w/t/root" --releasever=9 --setopt=reposdir="$w/t/reposd" --setopt=cachedir="$w/t/cache" --disableplugin='*' remove "$name" >/dev/null
done
createrepo_c -q --no-database "$D/repo/x86_64"
gpg --homedir "$KEYS" --batch --pinentry-mode loopback --local-user "$FPR" --armor --detach-sign "$D/repo/x86_64/repodata/repomd.xml"
`;
}

async function baseline(dir: string, repos: string[], keys: string, fpr: string, hostBase: string): Promise<number> {
  const file = path.join(dir, 'pipeline.sh');
  await writeFile(file, script());
  const t0 = performance.now();
  const cpu0 = processCpu('self').children;
  const forks0 = forksSinceBoot();
  await run('bash', [file, path.join(dir, 'baseline'), keys, fpr, hostBase, ...repos], { maxBuffer: 64 * 1024 * 1024 });
  scriptCpu = processCpu('self').children - cpu0;
  scriptForks = forksSinceBoot() - forks0;
  return (performance.now() - t0) / 1000;
}

/** CPU seconds the script and the commands it ran used (all waited for by bash, then by this process). */
let scriptCpu = 0;
/** Processes and threads the machine started while the script ran. */
let scriptForks = 0;

/** CPU seconds of a process: its own, and the commands it ran and waited for. */
type Cpu = { own: number; commands: number };

type Task = { id: number; kind: string; createdAt: string; startedAt: string | null; finishedAt: string | null };

/** Where a run's time went: per task kind, the time tasks waited in the queue and ran (from the server's timestamps). */
interface KindTimes {
  readonly kind: string;
  readonly tasks: number;
  readonly waitMedian: number;
  readonly runMedian: number;
  readonly runTotal: number;
}

/** Median time of each step the agents report in their task logs (`lenix: STEP took N.NN s`), by task kind. */
async function stepTimes(
  api: ApiClient,
  tasks: readonly Task[],
): Promise<{ kind: string; step: string; median: number }[]> {
  const times = new Map<string, number[]>();
  for (const t of tasks) {
    const res = await api.request('GET', `/api/v1/tasks/${t.id}/log`);
    for (const m of (await res.text()).matchAll(/^lenix: (.+) took (\d+\.\d+) s$/gm)) {
      const key = `${t.kind}\0${m[1]}`;
      times.set(key, [...(times.get(key) ?? []), Number(m[2])]);
    }
  }
  return [...times].map(([key, list]) => {
    const [kind, step] = key.split('\0') as [string, string];
    return { kind, step, median: median(list) };
  });
}

function kindTimes(tasks: readonly Task[]): KindTimes[] {
  const ms = (iso: string | null) => (iso === null ? Number.NaN : Date.parse(iso));
  const kinds = [...new Set(tasks.map((t) => t.kind))];
  return kinds.map((kind) => {
    const of = tasks.filter((t) => t.kind === kind && t.startedAt !== null && t.finishedAt !== null);
    const runs = of.map((t) => (ms(t.finishedAt) - ms(t.startedAt)) / 1000);
    return {
      kind,
      tasks: of.length,
      waitMedian: median(of.map((t) => (ms(t.startedAt) - ms(t.createdAt)) / 1000)),
      runMedian: median(runs),
      runTotal: runs.reduce((a, b) => a + b, 0),
    };
  });
}

async function lenixRun(
  dir: string,
  repos: string[],
  keysTemplate: string,
  nodes: number,
): Promise<{
  seconds: number;
  kinds: KindTimes[];
  steps: { kind: string; step: string; median: number }[];
  publishSeconds: number;
  cpu: Record<string, Cpu>;
  forks: number;
}> {
  const d = path.join(dir, `lenix-${nodes}`);
  const keys = path.join(d, 'keys');
  await mkdir(d, { recursive: true });
  await run('cp', ['-a', keysTemplate, keys]);
  const port = await freePort();
  const env = { LENIX_CONFIG: path.join(d, 'none.json'), LENIX_LOG_LEVEL: 'warn' };
  const procs: Proc[] = [];
  const roles = new Map<Proc, string>();
  const cpu: Record<string, Cpu> = {};
  try {
    const server = new Proc(
      [
        'server',
        '--data',
        path.join(d, 'server'),
        '--port',
        String(port),
        '--local-source-root',
        path.join(dir, 'src'),
      ],
      env,
    );
    procs.push(server);
    const url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
    const api = new ApiClient(url, (await readFile(path.join(d, 'server', 'admin.token'), 'utf8')).trim());
    const token = async (scope: string) =>
      (
        await api.json<{ token: string }>('POST', '/api/v1/tokens', {
          name: `${scope}-${Math.random()}`,
          scopes: [scope],
        })
      ).token;
    const agents: Proc[] = [];
    for (let i = 0; i < nodes; i++)
      agents.push(
        new Proc(
          [
            'node',
            '--server',
            url,
            '--token',
            await token('agent:build'),
            '--name',
            `n${i}`,
            '--work',
            path.join(d, `n${i}`),
          ],
          env,
        ),
      );
    agents.push(
      new Proc(
        ['signer', '--server', url, '--token', await token('agent:sign'), '--keys', keys, '--work', path.join(d, 'sw')],
        env,
      ),
    );
    agents.push(
      new Proc(
        [
          'tester',
          '--server',
          url,
          '--token',
          await token('agent:test'),
          '--work',
          path.join(d, 'tw'),
          '--jobs',
          TESTER_JOBS,
        ],
        env,
      ),
    );
    procs.push(...agents);
    roles.set(server, 'server');
    for (const [i, a] of agents.entries()) roles.set(a, i < nodes ? 'build nodes' : i === nodes ? 'signer' : 'tester');
    const cpuOf = (p: Proc): Cpu => {
      const { own, children } = processCpu(p.child.pid!);
      return { own, commands: children + liveChildrenCpu(p.child.pid!) };
    };
    const cpu0 = new Map(procs.map((p) => [p, cpuOf(p)]));
    // Agents log "registered" at info; with LENIX_LOG_LEVEL=warn wait on the API instead.
    for (;;) {
      const { agents: list } = await api.json<{ agents: { online: boolean }[] }>('GET', '/api/v1/agents');
      // The build nodes, the signer, and the tester's lanes (each registers as an agent of its own).
      if (list.filter((a) => a.online).length === nodes + 1 + Number(TESTER_JOBS)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const repo of repos) await api.json('POST', '/api/v1/sources', { name: path.basename(repo), url: repo });
    await api.json('POST', '/api/v1/repos', { name: 'bench', arches: ['x86_64'] });
    const t0 = performance.now();
    const forks0 = forksSinceBoot();
    const ids: number[] = [];
    for (const repo of repos)
      ids.push((await api.json<{ id: number }>('POST', '/api/v1/builds', { source: path.basename(repo) })).id);
    for (const id of ids) {
      for (;;) {
        const b = await api.json<{ state: string; tasks: { kind: string; state: string }[] }>(
          'GET',
          `/api/v1/builds/${id}`,
        );
        const test = b.tasks.find((t) => t.kind === 'test');
        if (b.state === 'failed' || test?.state === 'failed') throw new Error(`build ${id} failed`);
        if (test?.state === 'succeeded') break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const tested = performance.now();
    const rel = await api.json<{ id: number }>('POST', '/api/v1/releases', {
      repo: 'bench',
      builds: ids,
      approve: true,
    });
    for (;;) {
      const r = await api.json<{ state: string }>('GET', `/api/v1/releases/${rel.id}`);
      if (r.state === 'published') break;
      if (r.state === 'failed') throw new Error('publish failed');
      await new Promise((res) => setTimeout(res, 50));
    }
    const seconds = (performance.now() - t0) / 1000;
    const forks = forksSinceBoot() - forks0;
    for (const p of procs) {
      const role = roles.get(p)!;
      const [now, before, sum] = [cpuOf(p), cpu0.get(p)!, cpu[role] ?? { own: 0, commands: 0 }];
      cpu[role] = { own: sum.own + now.own - before.own, commands: sum.commands + now.commands - before.commands };
    }
    const tasks: Task[] = [];
    for (const id of ids) tasks.push(...(await api.json<{ tasks: Task[] }>('GET', `/api/v1/builds/${id}`)).tasks);
    return {
      seconds,
      kinds: kindTimes(tasks),
      steps: await stepTimes(api, tasks),
      publishSeconds: (performance.now() - tested) / 1000,
      cpu,
      forks,
    };
  } finally {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-pipeline-'));
try {
  const keys = path.join(dir, 'keys');
  const fpr = (await generateKey(keys, 'bench', 'rsa4096')).fingerprint;
  const hostBase = await buildHostBase(path.join(dir, 'hb'));
  const repos = await sources(dir);
  process.stderr.write(`baseline script, ${N} packages…\n`);
  const script1 = await baseline(dir, repos, keys, fpr, hostBase);
  process.stderr.write(`lenix, 1 node…\n`);
  const one = await lenixRun(dir, repos, keys, 1);
  process.stderr.write(`lenix, 2 nodes…\n`);
  const two = await lenixRun(dir, repos, keys, 2);
  console.log(
    `\nPipeline: ${N} small packages, commit → published signed repository (${os.cpus().length} cores, Node ${process.version}, tester --jobs ${TESTER_JOBS})\n`,
  );
  console.log('| run | seconds | ratio to the script |');
  console.log('| --- | ---: | ---: |');
  console.log(`| shell script (same tools, sequential) | ${script1.toFixed(2)} | 1.00 |`);
  console.log(`| Lenix, 1 build node | ${one.seconds.toFixed(2)} | ${(one.seconds / script1).toFixed(2)} |`);
  console.log(`| Lenix, 2 build nodes | ${two.seconds.toFixed(2)} | ${(two.seconds / script1).toFixed(2)} |`);
  console.log('\nWhere the time went (server task timestamps; tasks of a kind run side by side where agents allow):\n');
  console.log('| run | task kind | tasks | queued median s | ran median s | ran in all s |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const [label, r] of [
    ['1 node', one],
    ['2 nodes', two],
  ] as const) {
    for (const k of r.kinds)
      console.log(
        `| ${label} | ${k.kind} | ${k.tasks} | ${k.waitMedian.toFixed(2)} | ${k.runMedian.toFixed(2)} | ${k.runTotal.toFixed(2)} |`,
      );
    console.log(`| ${label} | release → published (after the last test) | | | | ${r.publishSeconds.toFixed(2)} |`);
  }
  console.log("\nSteps within the tasks (median of the agents' `took` lines in the task logs):\n");
  console.log('| run | task kind | step | median s |');
  console.log('| --- | --- | --- | ---: |');
  for (const [label, r] of [
    ['1 node', one],
    ['2 nodes', two],
  ] as const)
    for (const s of r.steps) console.log(`| ${label} | ${s.kind} | ${s.step} | ${s.median.toFixed(2)} |`);
  console.log('\nCPU seconds used (user + system, with the commands each process ran and waited for):\n');
  console.log("| run | process | its own CPU s | its commands' CPU s |");
  console.log('| --- | --- | ---: | ---: |');
  console.log(`| script | bash and its commands | | ${scriptCpu.toFixed(2)} |`);
  for (const [label, r] of [
    ['1 node', one],
    ['2 nodes', two],
  ] as const) {
    for (const [role, c] of Object.entries(r.cpu))
      console.log(`| ${label} | ${role} | ${c.own.toFixed(2)} | ${c.commands.toFixed(2)} |`);
    const total = Object.values(r.cpu).reduce((a, c) => a + c.own + c.commands, 0);
    console.log(`| ${label} | **all** | ${total.toFixed(2)} in all, ${(total / scriptCpu).toFixed(2)}× the script | |`);
  }
  // On this kind of VM, starting a process is dear and gets dearer when two cores start them at once.
  console.log('\nProcesses and threads started on the machine during each run (/proc/stat), a package:\n');
  console.log('| run | started | a package |');
  console.log('| --- | ---: | ---: |');
  for (const [label, forks] of [
    ['script', scriptForks],
    ['1 node', one.forks],
    ['2 nodes', two.forks],
  ] as const)
    console.log(`| ${label} | ${forks} | ${(forks / N).toFixed(0)} |`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
