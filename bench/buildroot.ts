/**
 * Buildroots (issue 14), in one run against today's host-toolchain build:
 *   1. landing: from "the library's build succeeded" (its binary task ended) to "its packages are in the build
 *      repository's published snapshot" (what the next buildroot installs from): sign, release, publish, sign
 *      metadata. Target ≤ 2 s.
 *   2. a trivial package with three BuildRequires (liblenixdemo-devel from the build repository, gcc and make from
 *      the host): its binary task without a target (`rpmbuild --nodeps` on the host toolchain, as before), in a
 *      buildroot made from nothing (cold), and in the node's cached root. Target ≤ 2× the --nodeps build.
 *
 *   npm run build && node dist/bench/buildroot.js [--runs 5]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { generateKey } from '../src/crypto/gpg.js';
import { LIBRARY } from '../test/support/buildroot-packages.js';
import { Proc, freePort, gitRepo } from '../test/support/cli.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(args.runs);

const TRIVIAL = `Name: three-deps
Version: 1.0
Release: 1%{?dist}
Summary: A trivial package with three BuildRequires
License: MIT
BuildRequires: liblenixdemo-devel
BuildRequires: gcc
BuildRequires: make

%description
Builds one small C file.

%build
printf 'int main(void) { return 0; }\\n' > t.c
gcc %{optflags} -o three-deps t.c

%install
install -D -m 0755 three-deps %{buildroot}%{_bindir}/three-deps

%files
%{_bindir}/three-deps
`;

type Task = {
  id: number;
  kind: string;
  state: string;
  startedAt: string | null;
  finishedAt: string | null;
  artifacts: { kind: string; sha256: string }[];
};
type Build = { id: number; state: string; tasks: Task[] };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-buildroot-'));
const procs: Proc[] = [];
try {
  const env = { LENIX_CONFIG: path.join(dir, 'none.json'), LENIX_LOG_LEVEL: 'warn' };
  const port = await freePort();
  const server = new Proc(
    [
      'server',
      '--data',
      path.join(dir, 'server'),
      '--port',
      String(port),
      '--local-source-root',
      path.join(dir, 'src'),
    ],
    env,
  );
  procs.push(server);
  const url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
  const api = new ApiClient(url, (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim());
  const token = async (scope: string) =>
    (
      await api.json<{ token: string }>('POST', '/api/v1/tokens', {
        name: `${scope}-${Math.random()}`,
        scopes: [scope],
      })
    ).token;
  const keys = path.join(dir, 'keys');
  await generateKey(keys, 'bench', 'ed25519');
  const nodeWork = path.join(dir, 'node');
  procs.push(new Proc(['node', '--server', url, '--token', await token('agent:build'), '--work', nodeWork], env));
  procs.push(
    new Proc(
      ['signer', '--server', url, '--token', await token('agent:sign'), '--keys', keys, '--work', path.join(dir, 'sw')],
      env,
    ),
  );
  for (;;) {
    const { agents } = await api.json<{ agents: { online: boolean }[] }>('GET', '/api/v1/agents');
    const { signingKey } = await api.json<{ signingKey: string | null }>('GET', '/api/v1/keys');
    if (agents.filter((a) => a.online).length === 2 && signingKey) break;
    await sleep(100);
  }
  await gitRepo(path.join(dir, 'src', 'liblenixdemo'), LIBRARY);
  await gitRepo(path.join(dir, 'src', 'three-deps'), { 'three-deps.spec': TRIVIAL });
  for (const name of ['liblenixdemo', 'three-deps'])
    await api.json('POST', '/api/v1/sources', { name, url: path.join(dir, 'src', name) });
  await api.json('POST', '/api/v1/targets', {
    name: 'bench',
    buildRepo: 'bench-build',
    arches: ['x86_64'],
    macros: { dist: '.lx9' },
  });

  const build = async (source: string, target?: string) => {
    const { id } = await api.json<{ id: number }>('POST', '/api/v1/builds', { source, ...(target ? { target } : {}) });
    for (;;) {
      const b = await api.json<Build>('GET', `/api/v1/builds/${id}`);
      if (b.state === 'failed' || b.state === 'cancelled') throw new Error(`build ${id} of ${source} ${b.state}`);
      if (b.state === 'succeeded') return b;
      await sleep(20);
    }
  };
  const binarySeconds = (b: Build) => {
    const t = b.tasks.find((x) => x.kind === 'binary')!;
    return (Date.parse(t.finishedAt!) - Date.parse(t.startedAt!)) / 1000;
  };
  /** Seconds from the binary task's end to a published build-repository snapshot holding the build's packages. */
  const landing = async (b: Build) => {
    const end = Date.parse(b.tasks.find((x) => x.kind === 'binary')!.finishedAt!);
    for (;;) {
      const repo = await api.json<{
        currentSnapshot: number | null;
        snapshots: { id: number; publishedAt: string | null; packages?: unknown }[];
      }>('GET', '/api/v1/repos/bench-build');
      const snap = repo.snapshots.find((s) => s.id === repo.currentSnapshot);
      const signed = (await api.json<Build>('GET', `/api/v1/builds/${b.id}`)).tasks
        .flatMap((t) => t.artifacts)
        .filter((a) => a.kind === 'signed-rpm');
      if (snap?.publishedAt && signed.length > 0 && signed.every((a) => JSON.stringify(snap).includes(a.sha256)))
        return (Date.parse(snap.publishedAt) - end) / 1000;
      await sleep(20);
    }
  };

  process.stderr.write(`library builds and their landing, ${RUNS} runs…\n`);
  const landings: number[] = [];
  for (let i = 0; i < RUNS; i++) landings.push(await landing(await build('liblenixdemo', 'bench')));

  process.stderr.write(`three-deps: --nodeps, cold root, cached root, ${RUNS} runs each…\n`);
  const nodeps: number[] = [];
  const cold: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    nodeps.push(binarySeconds(await build('three-deps')));
    await rm(path.join(nodeWork, 'roots'), { recursive: true, force: true });
    cold.push(binarySeconds(await build('three-deps', 'bench')));
    cached.push(binarySeconds(await build('three-deps', 'bench')));
  }
  const base = median(nodeps);
  console.log(`\nBuildroots (${os.cpus().length} cores, Node ${process.version}, medians of ${RUNS} runs)\n`);
  console.log('| measure | seconds | ratio | target |');
  console.log('| --- | ---: | ---: | --- |');
  console.log(
    `| library build succeeded → installable from the build repository | ${median(landings).toFixed(2)} (max ${Math.max(...landings).toFixed(2)}) | | ≤ 2 s |`,
  );
  console.log(`| trivial build, host toolchain, \`--nodeps\` (binary task) | ${base.toFixed(2)} | 1.00 | |`);
  console.log(
    `| same, 3 BuildRequires, buildroot made from nothing | ${median(cold).toFixed(2)} | ${(median(cold) / base).toFixed(2)} | ≤ 2× |`,
  );
  console.log(
    `| same, 3 BuildRequires, cached root | ${median(cached).toFixed(2)} | ${(median(cached) / base).toFixed(2)} | ≤ 2× |`,
  );
} finally {
  for (const p of procs.reverse()) await p.stop('SIGTERM');
  await rm(dir, { recursive: true, force: true });
}
