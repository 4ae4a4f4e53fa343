import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createReadStream } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parsePlainName } from '../../core/ids.js';
import { parseNevra } from '../../core/nevra.js';
import type { TestTaskPayload } from '../../core/protocol.js';
import { indexTar } from '../../intake/tar.js';
import { describeIdentity, type SandboxIdentity } from '../../rpm/sandbox-identity.js';
import { SANDBOX_WORK, describeLimits, runSandboxed, type SandboxLimits } from '../../rpm/sandbox.js';
import type { AgentClient } from '../../client/agent.js';
import type { ApiClient } from '../../client/http.js';
import { runAgent, type TaskContext, type TaskReport } from '../kit/run-agent.js';
import { buildHostBase } from '../kit/host-base.js';
import { ROOT_DNF_CONF } from '../kit/root-script.js';
import { placeRepo } from '../kit/local-repo.js';
import { parseStages, testRootScript, type StageResult } from './test-root.js';

export interface TesterOptions {
  readonly client: AgentClient;
  readonly api: ApiClient;
  readonly name: string;
  readonly workRoot: string;
  /** Who package code runs as on this host: "root" of a user namespace mapped to this unprivileged user. */
  readonly identity: SandboxIdentity;
  readonly limits: SandboxLimits;
  readonly rpmlintConfig: string;
  readonly log: Logger;
  readonly stop: AbortSignal;
  /** Test runs at once (each its own lease loop and root). */
  readonly jobs?: number;
}

/**
 * The test system. For each signed build: a throwaway root (overlay of the host's /usr plus the generated
 * host-base package, in bubblewrap with no network), a temporary repository of the build's signed packages
 * checked with gpgcheck=1 against the signing key, then install → rpm -V → the package's own tests/ →
 * remove, and rpmlint on the files. Any failing stage fails the task; the stages are in the result.
 */
export async function runTester(o: TesterOptions): Promise<void> {
  await mkdir(o.workRoot, { recursive: true, mode: 0o700 });
  const hostBase = await buildHostBase(o.workRoot);
  const jobs = Math.max(1, o.jobs ?? 1);
  await Promise.all(
    Array.from({ length: jobs }, (_, i) =>
      runAgent<TestTaskPayload>({
        client: o.client,
        name: jobs === 1 ? o.name : `${o.name}-${i + 1}`,
        role: 'test',
        arches: ['any'],
        capabilities: { root: 'overlay+host-base' },
        log: o.log,
        stop: o.stop,
        handle: (ctx) => testBuild(o, ctx, hostBase),
      }),
    ),
  );
}

async function testBuild(o: TesterOptions, ctx: TaskContext<TestTaskPayload>, hostBase: string): Promise<TaskReport> {
  const t = ctx.task;
  const say = (line: string) => ctx.log.write(`lenix: ${line}\n`);
  const work = await mkdtemp(path.join(o.workRoot, `test-${t.taskId}-`));
  try {
    // Everything the test root gets is written into `in/` by the tester and streamed into the sandbox; the
    // package's tree is unpacked only inside it.
    const input = path.join(work, 'in');
    const repo = path.join(input, 'repo');
    await mkdir(repo, { recursive: true });
    const binaries = t.packages.filter((p) => p.kind === 'rpm');
    if (binaries.length === 0)
      return {
        outcome: { kind: 'failure', code: 'NO_PACKAGES', reason: 'no signed binary packages to test' },
        result: null,
      };
    for (const p of binaries) {
      await o.api.download(p.url, path.join(repo, parsePlainName(p.name)), p.sha256);
      say(`${p.name}: sha256 ${p.sha256} verified`);
    }
    // Packages of an arch this host's rpm cannot install are not tested here: said, and reported to the server.
    const accepts = await installableArches();
    const testable = binaries.filter((p) => accepts.has(archOfFile(p.name)));
    const untested = [...new Set(binaries.map((p) => archOfFile(p.name)).filter((a) => !accepts.has(a)))].map(
      (arch) => ({
        arch,
        reason: `tester ${o.name} has no ${arch} root: its rpm installs ${[...accepts].join(', ')}`,
      }),
    );
    for (const u of untested) say(`untested: ${u.arch}: ${u.reason}`);
    if (testable.length === 0) {
      say('no package here is of an arch this tester can install: nothing tested');
      return { outcome: { kind: 'success' }, result: { stages: [], untested } };
    }
    await o.api.download(t.publicKeyUrl, path.join(input, 'key.asc'));
    // The target repository's current snapshot and, for a build of a build target, the target's build and other
    // repositories, so that dependencies on packages released or built there resolve (verified by digest, cached
    // by digest across runs, checked by dnf against each repository's keys).
    const extra = [...(t.target ? [t.target] : []), ...(t.buildRepos ?? [])].filter((r) => r.packages.length > 0);
    const extraRepos: string[] = [];
    const cache = path.join(o.workRoot, 'cache');
    await mkdir(cache, { recursive: true });
    for (const [i, r] of extra.entries()) {
      extraRepos.push(...(await placeRepo({ api: o.api, input, cache }, r, { id: `target-${i}`, dir: `target-${i}` })));
      say(`repository ${r.name}: ${r.packages.length} packages from its current snapshot`);
    }
    await cp(hostBase, path.join(input, 'host-base'), { recursive: true });
    await copyFile(o.rpmlintConfig, path.join(input, 'rpmlint.toml'));

    // The package's own tests: tests/ at the build's commit (named from the archive's index, unpacked inside).
    const archive = path.join(input, 'source.tar');
    await o.api.download(t.archiveUrl, archive);
    const index = await indexTar(createReadStream(archive), () => false);
    const tests = index.files
      .filter((f) => /^tests\/[^/]+$/.test(f))
      .map((f) => f.slice('tests/'.length))
      .filter((f) => /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(f))
      .sort();
    say(tests.length > 0 ? `package tests: ${tests.join(', ')}` : 'package tests: none (no tests/ folder)');

    const inside = (f: string) => `${SANDBOX_WORK}/in/${f}`;
    await mkdir(path.join(input, 'repos.d'));
    await writeFile(
      path.join(input, 'repos.d', 'lenix-test.repo'),
      [
        '[lenix-build]',
        `name=Build ${t.buildId} (signed)`,
        `baseurl=file://${inside('repo')}`,
        'gpgcheck=1',
        'repo_gpgcheck=0',
        `gpgkey=file://${inside('key.asc')}`,
        '',
        ...extraRepos,
        '[lenix-host-base]',
        'name=What the host offers',
        `baseurl=file://${inside('host-base')}`,
        'gpgcheck=0',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(input, 'test-root.sh'), testRootScript());
    // dnf's own configuration, not the host's (which may hold proxy passwords or repository credentials).
    await writeFile(path.join(input, 'dnf.conf'), ROOT_DNF_CONF);
    const names = testable.map((p) => p.name.replace(/\.rpm$/, ''));
    say(
      `sandbox: root of its own user namespace = ${describeIdentity(o.identity)}; limits: ${describeLimits(o.limits)}`,
    );
    let output = '';
    const result = await runSandboxed({
      identity: o.identity,
      limits: o.limits,
      inside: 'root',
      command: ['bash', inside('test-root.sh')],
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: `${SANDBOX_WORK}/home`,
        LANG: 'C.UTF-8',
        LC_ALL: 'C.UTF-8',
        W: SANDBOX_WORK,
        PACKAGES: names.join(' '),
        TESTS: tests.join(' '),
        EXTRA_REPOS: String(extra.length),
        RPMLINT_CONFIG: inside('rpmlint.toml'),
      },
      hostname: 'lenix-test',
      inputDir: input,
      onOutput: (c) => {
        ctx.log.write(c);
        if (output.length < 4 * 1024 * 1024) output += c.toString('utf8');
      },
      signal: ctx.signal,
    });
    const stages: StageResult[] = parseStages(output);
    if (result.kind === 'killed') {
      const code =
        result.why === 'timeout'
          ? 'TEST_TIMEOUT'
          : result.why === 'log-limit'
            ? 'TEST_LOG_LIMIT'
            : result.why === 'cancelled'
              ? 'CANCELLED'
              : 'TEST_KILLED';
      return {
        outcome: {
          kind: 'failure',
          code,
          reason: `test root ${result.why === 'log-limit' ? 'stopped: its log passed the limit' : result.why}`,
        },
        result: { stages },
      };
    }
    const failed = stages.filter((s) => s.outcome === 'failed');
    if (failed.length > 0 || result.code !== 0) {
      const reason = failed.map((s) => `${s.name}: ${s.detail}`).join('; ') || `test script exited ${result.code}`;
      say(`FAILED ${reason}`);
      return {
        outcome: {
          kind: 'failure',
          code: result.diskFull ? 'TEST_DISK_FULL' : 'TESTS_FAILED',
          reason: reason.slice(0, 2000),
        },
        result: { stages },
      };
    }
    say(`passed: ${stages.map((s) => `${s.name} ${s.outcome}`).join(', ')}`);
    return { outcome: { kind: 'success' }, result: { stages, ...(untested.length > 0 ? { untested } : {}) } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A package file's arch: NAME-VERSION-RELEASE.ARCH.rpm (the server checked the name against the header). */
const archOfFile = (name: string) => parseNevra(name.replace(/\.rpm$/, '')).arch;

let accepted: Promise<Set<string>> | null = null;
/** The arches this host's rpm installs ("compatible archs" of `rpm --showrc`). */
function installableArches(): Promise<Set<string>> {
  accepted ??= promisify(execFile)('rpm', ['--showrc'], { maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => {
    const line = /^compatible archs\s*:\s*(.+)$/m.exec(stdout)?.[1] ?? '';
    return new Set(['noarch', ...line.split(/\s+/).filter(Boolean)]);
  });
  return accepted;
}
