/**
 * Commit to installable (issue 15): a trivial noarch package in a bare git repository with Lenix's post-receive
 * hook, built for a target, released by a repository that follows the target with auto-release; each run
 * commits a new version, pushes, and times every stage until `dnf install` of that version succeeds from the
 * published repository (gpgcheck=1, repo_gpgcheck=1). Then the CLI's start-up, with hyperfine, against
 * `node -e 0`: `lenix --version`, `lenix verify PKG --bundle PKG.proof` (offline, the released package) and
 * `lenix builds` (one request to the server). Real server, node, signer, tester, git and dnf processes.
 *
 *   npm run build && node dist/bench/push.js [--runs 5]
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { gitRepo, specWith } from '../test/support/cli.js';
import { startSystem } from '../test/support/system.js';
import { DnfClient } from '../test/support/dnf.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/lenix.js', import.meta.url));
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(args.runs);

type Task = {
  id: number;
  kind: string;
  state: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
};
type Build = { id: number; state: string; evr: string; createdAt: string; tasks: Task[] };
type Release = {
  id: number;
  repoId: number;
  state: string;
  builds: number[];
  createdAt: string;
  finishedAt: string | null;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (iso: string | null) => (iso ? Date.parse(iso) : Number.NaN);

async function until<T>(what: string, fn: () => Promise<T | null | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20)); // a bench polls its own observation, not the system under test
  }
}

async function main(): Promise<void> {
  await run('hyperfine', ['--version']).catch(() => {
    throw new Error(
      'bench/push.ts needs hyperfine for the CLI start-up part: apt-get install hyperfine (dnf install hyperfine)',
    );
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-push-'));
  const sys = await startSystem(dir, { logLevel: 'warn' });
  try {
    const { url, api, env, cli } = sys;
    await cli('target', 'create', 'lx9', '--build-repo', 'lx9-build', '--arch', 'x86_64', '--dist', '.lx9');
    await cli('repo', 'create', 'live', '--arch', 'x86_64', '--follow', 'lx9', '--auto-release');
    const spec = (v: string) =>
      specWith('quick', 'echo build').replace('Release: 1', 'Release: 1%{?dist}').replaceAll('1.0', v);
    const bare = path.join(dir, 'repos', 'quick.git');
    const work = path.join(dir, 'work');
    await gitRepo(path.join(dir, 'seed'), { 'quick.spec': spec('1.0') });
    await mkdir(path.join(dir, 'repos'), { recursive: true });
    await run('git', ['clone', '-q', '--bare', path.join(dir, 'seed'), bare]);
    await run('git', ['clone', '-q', bare, work]);
    const git = (...a: string[]) => run('git', a, { cwd: work, env: { ...process.env, ...env } });
    await git('config', 'user.email', 'dev@example.org');
    await git('config', 'user.name', 'Dev');
    await cli('source', 'add', 'quick', bare, '--target', 'lx9');
    await cli('source', 'hook', 'quick', '--install', bare);
    const live = (await api.json<{ id: number }>('GET', '/api/v1/repos/live')).id;

    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'live.repo'), await (await fetch(`${url}/repos/live.repo`)).text());
    const client = new DnfClient(path.join(dir, 'client'), reposDir);
    await client.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));

    const stages: Record<string, number[]> = {};
    const add = (k: string, v: number) => {
      stages[k] = [...(stages[k] ?? []), v];
    };
    for (let i = 0; i <= RUNS; i++) {
      const version = `1.${i + 1}`;
      await writeFile(path.join(work, 'quick.spec'), spec(version));
      await git('commit', '-qam', `quick ${version}`);
      const t0 = Date.now();
      await git('push', '-q', 'origin', 'HEAD:main');
      const pushed = Date.now();
      const build = await until(`build of ${version}`, async () =>
        (await api.json<{ builds: Build[] }>('GET', '/api/v1/builds?source=quick')).builds.find((b) =>
          b.evr.startsWith(`${version}-`),
        ),
      );
      const rel = await until(`release of ${version}`, async () => {
        const r = (await api.json<{ releases: Release[] }>('GET', '/api/v1/releases')).releases.find(
          (x) => x.repoId === live && x.builds.includes(build.id),
        );
        if (r?.state === 'failed') throw new Error(`release failed: ${JSON.stringify(r)}`);
        return r?.state === 'published' ? r : null;
      });
      const published = Date.now();
      const dnf = await client.dnf(`--refresh install quick-${version}`);
      if (dnf.code !== 0) throw new Error(dnf.out);
      const installed = Date.now();
      if (i === 0) continue; // warm-up: the first buildroot of the target is made cold
      const full = await api.json<Build>('GET', `/api/v1/builds/${build.id}`);
      const end = (kind: string) => Math.max(...full.tasks.filter((t) => t.kind === kind).map((t) => ms(t.finishedAt)));
      add('git push (hook → fetch → build created)', pushed - t0);
      add('  push: commit → build recorded (server clock)', ms(full.createdAt) - t0);
      add('build (SRPM + binary, to the binary task end)', end('binary') - ms(full.createdAt));
      add('sign', end('sign') - end('binary'));
      add('test', end('test') - end('sign'));
      add('auto-release → published', ms(rel.finishedAt) - end('test'));
      add('(observed by the bench)', published - ms(rel.finishedAt));
      add('dnf --refresh install', installed - published);
      add('total: commit pushed → installed', installed - t0);
      // Each task's own steps, as its log times them (the test's rpmlint runs beside the others, from the start).
      for (const t of full.tasks) {
        add(`  ${t.kind}: queued until leased`, ms(t.startedAt) - ms(t.createdAt));
        add(`  ${t.kind}: leased until complete`, ms(t.finishedAt) - ms(t.startedAt));
        const log = await (await fetch(`${url}/api/v1/tasks/${t.id}/log`)).text();
        for (const m of log.matchAll(/^lenix: (.+) took (\d+\.\d+) s$/gm))
          add(`  ${t.kind}: ${m[1]}`, Number(m[2]) * 1000);
      }
    }
    console.log(
      `\nCommit to installable: ${RUNS} runs, median seconds (${os.cpus().length} cores, Node ${process.version})\n`,
    );
    console.log('| stage | median s |');
    console.log('| --- | ---: |');
    for (const [k, v] of Object.entries(stages)) console.log(`| ${k} | ${(median(v) / 1000).toFixed(2)} |`);

    // CLI start-up: the released package and its proof bundle, offline verification, one client request.
    const rpm = (await run('ls', [path.join(dir, 'server', 'repos', 'live', 'mirror', 'x86_64', 'Packages')])).stdout
      .split('\n')
      .filter(Boolean)
      .pop()!;
    const pkg = path.join(dir, rpm);
    await writeFile(pkg, Buffer.from(await (await fetch(`${url}/repos/live/x86_64/Packages/${rpm}`)).arrayBuffer()));
    await writeFile(`${pkg}.proof`, await (await fetch(`${url}/repos/live/x86_64/Packages/${rpm}.proof`)).text());
    const logKey = (await (await fetch(`${url}/ledger/key`)).text()).trim();
    // Every command gets the same environment from hyperfine's own (the client's settings; HOME for the ledger
    // state `verify` keeps), so that no command pays for an `env` start the baseline does not.
    const { NODE_EXTRA_CA_CERTS: _unset, ...inherited } = process.env;
    const node = process.execPath;
    const { stdout } = await run(
      'hyperfine',
      [
        '-N',
        '--warmup',
        '5',
        '--export-json',
        path.join(dir, 'hyperfine.json'),
        `${node} -e 0`,
        `${node} ${BIN} --version`,
        `${node} ${BIN} verify ${pkg} --bundle ${pkg}.proof --log-key ${logKey}`,
        `${node} ${BIN} builds`,
      ],
      { maxBuffer: 16 * 1024 * 1024, env: { ...inherited, ...env, HOME: dir } },
    );
    void stdout;
    const results = (
      JSON.parse(await readFile(path.join(dir, 'hyperfine.json'), 'utf8')) as {
        results: { mean: number; stddev: number }[];
      }
    ).results;
    const base = results[0]!.mean;
    const names = [
      'node -e 0',
      'lenix --version',
      'lenix verify PKG --bundle PKG.proof (offline)',
      'lenix builds (one request)',
    ];
    console.log(`\nCLI start-up (hyperfine, ${process.version}; NODE_EXTRA_CA_CERTS unset for every command)\n`);
    console.log('| command | mean ms | ± ms | × node -e 0 |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const [i, r] of results.entries())
      console.log(
        `| ${names[i]} | ${(r.mean * 1000).toFixed(1)} | ${(r.stddev * 1000).toFixed(1)} | ${(r.mean / base).toFixed(2)} |`,
      );
  } finally {
    await sys.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
