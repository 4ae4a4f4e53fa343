import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createReadStream } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parsePlainName } from '../../core/ids.js';
import { parseNevra } from '../../core/nevra.js';
import { TEST_STAGE_LIMITS, type TestTaskPayload } from '../../core/protocol.js';
import { LenixError } from '../../core/errors.js';
import { emulationProblem, rootAccessProblem, type SystemRoot } from '../kit/system-root.js';
import { indexTar } from '../../intake/tar.js';
import { describeIdentity, type SandboxIdentity } from '../../rpm/sandbox-identity.js';
import {
  SANDBOX_WORK,
  describeLimits,
  launcher,
  runSandboxed,
  startSandbox,
  type SandboxLimits,
  type SandboxResult,
  type StartedSandbox,
} from '../../rpm/sandbox.js';
import type { AgentClient } from '../../client/agent.js';
import type { ApiClient } from '../../client/http.js';
import { runAgent, type TaskContext, type TaskReport } from '../kit/run-agent.js';
import { buildHostBase } from '../kit/host-base.js';
import { ROOT_DNF_CONF } from '../kit/root-script.js';
import { placeRepo } from '../kit/local-repo.js';
import { listUsrFolders, rpmLibdir } from '../kit/usr-folders.js';
import { parseStages, testRootPrepare, testRootScript, type StageResult } from './test-root.js';

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
  /** System roots of other architectures: their packages are installed and tested in a root made from them. */
  readonly systemRoots?: readonly SystemRoot[];
}

/** A system root the tester tests in, with the host-base repository and the list of /usr folders made from it. */
interface ArchRoot {
  readonly root: SystemRoot;
  readonly hostBase: string;
  readonly usrFolders: string;
}

/**
 * The test system. For each signed build: a throwaway root (overlay of the host's /usr plus the generated
 * host-base package, in bubblewrap with no network), a temporary repository of the build's signed packages
 * checked with gpgcheck=1 against the signing key, then install → rpm -V → the package's own tests/ →
 * remove, and rpmlint on the files. Any failing stage fails the task; the stages are in the result.
 */
export async function runTester(o: TesterOptions): Promise<void> {
  await mkdir(o.workRoot, { recursive: true, mode: 0o700 });
  const host = {
    hostBase: await buildHostBase(o.workRoot),
    usrFolders: await listUsrFolders('/usr', path.join(o.workRoot, 'usr-folders')),
  };
  const usrFolderList = await readFile(host.usrFolders, 'latin1');
  const libdir = await rpmLibdir();
  const archRoots = new Map<string, ArchRoot>();
  for (const root of o.systemRoots ?? []) {
    const problem = await emulationProblem(root.info.arch);
    if (problem) throw new LenixError('EMULATION_UNAVAILABLE', `cannot test in the ${root.info.arch} root: ${problem}`);
    const access = await rootAccessProblem(root, launcher(o.identity));
    if (access) throw new LenixError('SYSTEM_ROOT_INVALID', access);
    const arch = root.info.arch;
    archRoots.set(arch, {
      root,
      hostBase: await buildHostBase(path.join(o.workRoot, 'roots', arch), root.dir),
      usrFolders: await listUsrFolders(path.join(root.dir, 'usr'), path.join(o.workRoot, `usr-folders-${arch}`)),
    });
  }
  const jobs = Math.max(1, o.jobs ?? 1);
  await Promise.all(
    Array.from({ length: jobs }, (_, i) => {
      const ahead = new RootAhead(() => startRoot(o, usrFolderList, libdir), o.stop);
      return runAgent<TestTaskPayload>({
        client: o.client,
        name: jobs === 1 ? o.name : `${o.name}-${i + 1}`,
        role: 'test',
        arches: ['any'],
        capabilities: { root: 'overlay+host-base', ...(archRoots.size > 0 ? { roots: [...archRoots.keys()] } : {}) },
        log: o.log,
        stop: o.stop,
        handle: (ctx) => testBuild(o, ctx, host, archRoots, ahead).finally(() => ahead.refill()),
      });
    }),
  );
}

/** The environment every test run's script starts with (the task's own comes with it). */
const BASE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: `${SANDBOX_WORK}/home`,
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  W: SANDBOX_WORK,
};
/** Where a root made ahead reads the list of /usr's folders (a file bwrap makes from the tester's text). */
const USR_FOLDERS_AT = '/run/lenix-usr-folders';
/** The task's variables for a root made ahead, in its inputs (NUL-separated NAME=value). */
const TASK_ENV = 'task.env';

/** A test sandbox for the host's arch, started now: it makes its root, then waits for its task. */
function startRoot(o: TesterOptions, usrFolders: string, libdir: string): StartedSandbox {
  return startSandbox({
    identity: o.identity,
    limits: o.limits,
    inside: 'root',
    command: ['bash', `${SANDBOX_WORK}/in/test-root.sh`],
    env: { ...BASE_ENV, USR_FOLDERS: USR_FOLDERS_AT, RPM_LIBDIR: libdir, TASK_ENV },
    hostname: 'lenix-test',
    files: { [USR_FOLDERS_AT]: usrFolders },
    prepare: testRootPrepare(),
    input: true,
  });
}

/**
 * The next test's root, made while the tester waits for a task (the root stage is ~0.3–0.6 s of a test on a
 * small machine): one per lease loop, used by one task only, made again after each.
 */
class RootAhead {
  private next: StartedSandbox | null = null;

  constructor(
    private readonly make: () => StartedSandbox,
    private readonly stop: AbortSignal,
  ) {
    stop.addEventListener('abort', () => this.next?.discard(), { once: true });
    this.refill();
  }

  /** The root made ahead, if it is still waiting; its task is then the caller's to give. */
  take(): StartedSandbox | null {
    const s = this.next;
    this.next = null;
    if (s?.ended) return null;
    return s;
  }

  refill(): void {
    if (this.next === null && !this.stop.aborted) this.next = this.make();
  }
}

async function testBuild(
  o: TesterOptions,
  ctx: TaskContext<TestTaskPayload>,
  host: { readonly hostBase: string; readonly usrFolders: string },
  archRoots: ReadonlyMap<string, ArchRoot>,
  ahead: RootAhead,
): Promise<TaskReport> {
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
    // Packages of an arch this host's rpm cannot install, and that no system root of the tester has, are not
    // tested here: said, and reported to the server.
    const accepts = await installableArches();
    const native = binaries.filter((p) => accepts.has(archOfFile(p.name)));
    const foreign = [...archRoots.keys()].map((arch) => ({
      arch,
      packages: binaries.filter((p) => archOfFile(p.name) === arch && !accepts.has(arch)),
    }));
    const testable = [...native, ...foreign.flatMap((f) => f.packages)];
    const untested = [
      ...new Set(binaries.map((p) => archOfFile(p.name)).filter((a) => !accepts.has(a) && !archRoots.has(a))),
    ].map((arch) => ({
      arch,
      reason: `tester ${o.name} has no ${arch} root: its rpm installs ${[...accepts].join(', ')}${archRoots.size > 0 ? `; its roots are ${[...archRoots.keys()].join(', ')}` : ''}`,
    }));
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
    await cp(host.hostBase, path.join(input, 'host-base'), { recursive: true });
    await copyFile(host.usrFolders, path.join(input, 'usr-folders'));
    for (const f of foreign)
      if (f.packages.length > 0) {
        await cp(archRoots.get(f.arch)!.hostBase, path.join(input, `host-base-${f.arch}`), { recursive: true });
        await copyFile(archRoots.get(f.arch)!.usrFolders, path.join(input, `usr-folders-${f.arch}`));
      }
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
    // One run per root: the host's for the packages its rpm installs, then each system root of another arch for
    // that arch's packages (dnf --forcearch; scriptlets and tests run through qemu-user). rpmlint runs once, on all.
    const runs = [
      { arch: null, packages: native },
      ...foreign.filter((f) => f.packages.length > 0).map((f) => ({ arch: f.arch, packages: f.packages })),
    ].filter((r) => r.packages.length > 0);
    for (const r of runs) {
      const reposD = r.arch ? `repos.d-${r.arch}` : 'repos.d';
      await mkdir(path.join(input, reposD));
      await writeFile(
        path.join(input, reposD, 'lenix-test.repo'),
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
          `name=What the ${r.arch ?? 'host'} root offers`,
          `baseurl=file://${inside(r.arch ? `host-base-${r.arch}` : 'host-base')}`,
          'gpgcheck=0',
          '',
        ].join('\n'),
      );
    }
    await writeFile(path.join(input, 'test-root.sh'), testRootScript());
    // dnf's own configuration, not the host's (which may hold proxy passwords or repository credentials).
    await writeFile(path.join(input, 'dnf.conf'), ROOT_DNF_CONF);
    say(
      `sandbox: root of its own user namespace = ${describeIdentity(o.identity)}; limits: ${describeLimits(o.limits)}`,
    );
    const stages: StageResult[] = [];
    let exitedBadly: number | null = null;
    let diskFull = false;
    for (const [i, r] of runs.entries()) {
      const root = r.arch ? archRoots.get(r.arch)!.root : null;
      if (root) say(`${r.arch}: testing in the ${r.arch} system root ${root.dir} (emulated by qemu-user)`);
      let output = '';
      // The task's own variables; the rest is the same for every run of this tester.
      const taskEnv = {
        PACKAGES: r.packages.map((p) => p.name.replace(/\.rpm$/, '')).join(' '),
        TESTS: tests.join(' '),
        EXTRA_REPOS: String(extra.length),
        RPMLINT_CONFIG: inside('rpmlint.toml'),
        REPOS_D: r.arch ? `repos.d-${r.arch}` : 'repos.d',
        LINT: i === 0 ? '1' : '0',
      };
      const onOutput = (c: Buffer) => {
        ctx.log.write(c);
        if (output.length < 4 * 1024 * 1024) output += c.toString('utf8');
      };
      const made = root ? null : ahead.take();
      let result: SandboxResult;
      if (made) {
        // A NUL ends a pair: the values are file names, which hold none, and any NUL is dropped all the same.
        const pairs = Object.entries(taskEnv).map(([k, v]) => `${k}=${v.replaceAll('\0', '')}\0`);
        await writeFile(path.join(input, TASK_ENV), pairs.join(''));
        result = await made.run({ inputDir: input, onOutput, signal: ctx.signal });
      } else {
        result = await runSandboxed({
          identity: o.identity,
          limits: o.limits,
          inside: 'root',
          command: ['bash', inside('test-root.sh')],
          env: {
            ...BASE_ENV,
            ...taskEnv,
            USR_FOLDERS: inside(r.arch ? `usr-folders-${r.arch}` : 'usr-folders'),
            RPM_LIBDIR: await rpmLibdir(),
            ...(root ? { SYSTEM: SYSTEM_AT, FORCEARCH: root.info.arch } : {}),
          },
          hostname: 'lenix-test',
          inputDir: input,
          ...(root
            ? {
                binds: [
                  { from: path.join(root.dir, 'usr'), to: `${SYSTEM_AT}/usr` },
                  { from: path.join(root.dir, 'etc'), to: `${SYSTEM_AT}/etc` },
                ],
              }
            : {}),
          onOutput,
          signal: ctx.signal,
        });
      }
      stages.push(...parseStages(output).map((s) => (r.arch ? { ...s, name: `${s.name} (${r.arch})` } : s)));
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
            reason: `test root${r.arch ? ` (${r.arch})` : ''} ${result.why === 'log-limit' ? 'stopped: its log passed the limit' : result.why}`,
          },
          result: { stages: stages.slice(0, TEST_STAGE_LIMITS.stages) },
        };
      }
      if (result.code !== 0) exitedBadly ??= result.code;
      diskFull ||= result.diskFull;
    }
    const failed = stages.filter((s) => s.outcome === 'failed');
    if (failed.length > 0 || exitedBadly !== null) {
      const reason = failed.map((s) => `${s.name}: ${s.detail}`).join('; ') || `test script exited ${exitedBadly}`;
      say(`FAILED ${reason}`);
      return {
        outcome: { kind: 'failure', code: diskFull ? 'TEST_DISK_FULL' : 'TESTS_FAILED', reason: reason.slice(0, 2000) },
        result: { stages: stages.slice(0, TEST_STAGE_LIMITS.stages) },
      };
    }
    say(`passed: ${stages.map((s) => `${s.name} ${s.outcome}`).join(', ')}`);
    return {
      outcome: { kind: 'success' },
      result: { stages: stages.slice(0, TEST_STAGE_LIMITS.stages), ...(untested.length > 0 ? { untested } : {}) },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Where a foreign system root's /usr and /etc are inside the tester's sandbox. */
const SYSTEM_AT = '/run/lenix-system';

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
