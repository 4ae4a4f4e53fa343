import { execFile } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { parsePlainName } from '../../core/ids.js';
import type { TestTaskPayload } from '../../core/protocol.js';
import { extractTar } from '../../intake/tar.js';
import { runSandboxed } from '../../rpm/sandbox.js';
import type { AgentClient, ApiClient } from '../kit/client.js';
import { runAgent, type TaskContext, type TaskResult } from '../kit/run-agent.js';
import { buildHostBase } from './host-base.js';
import { parseStages, testRootScript, type StageResult } from './test-root.js';

const run = promisify(execFile);

export interface TesterOptions {
  readonly client: AgentClient;
  readonly api: ApiClient;
  readonly name: string;
  readonly workRoot: string;
  readonly hide: readonly string[];
  readonly timeoutMs: number;
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
  if (process.getuid?.() !== 0) throw new Error('the Debian-host tester needs root (it mounts an overlay root in a private namespace)');
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

async function testBuild(o: TesterOptions, ctx: TaskContext<TestTaskPayload>, hostBase: string): Promise<TaskResult> {
  const t = ctx.task;
  const say = (line: string) => ctx.log.write(`lenix: ${line}\n`);
  const work = await mkdtemp(path.join(o.workRoot, `test-${t.taskId}-`));
  try {
    const repo = path.join(work, 'repo');
    await mkdir(repo);
    const binaries = t.packages.filter((p) => p.kind === 'rpm');
    if (binaries.length === 0) return { outcome: { kind: 'failure', code: 'NO_PACKAGES', reason: 'no signed binary packages to test' }, result: null };
    for (const p of binaries) {
      await o.api.download(p.url, path.join(repo, parsePlainName(p.name)), p.sha256);
      say(`${p.name}: sha256 ${p.sha256} verified`);
    }
    await o.api.download(t.publicKeyUrl, path.join(work, 'key.asc'));
    // The target repository's current snapshot, so that dependencies on packages already released there
    // resolve (verified by digest, cached by digest across runs, checked by dnf against the repository keys).
    const targetRepo = path.join(work, 'target');
    const targetKeys: string[] = [];
    if (t.target && t.target.packages.length > 0) {
      await mkdir(targetRepo);
      const cache = path.join(o.workRoot, 'cache');
      await mkdir(cache, { recursive: true });
      for (const p of t.target.packages) {
        const cached = path.join(cache, p.sha256);
        if (!existsSync(cached)) await o.api.download(p.url, cached, p.sha256);
        await copyFile(cached, path.join(targetRepo, parsePlainName(p.name)));
      }
      for (const [i, url] of t.target.keyUrls.entries()) {
        const file = path.join(work, `target-key-${i}.asc`);
        await o.api.download(url, file);
        targetKeys.push(`file://${file}`);
      }
      say(`target repository ${t.target.name}: ${t.target.packages.length} packages from its current snapshot`);
    }
    for (const r of targetKeys.length > 0 ? [repo, targetRepo] : [repo]) {
      await run('createrepo_c', ['--quiet', '--no-database', r]);
    }

    // The package's own tests: tests/ at the build's commit.
    const tree = path.join(work, 'tree');
    await mkdir(tree);
    const archive = path.join(work, 'source.tar');
    await o.api.download(t.archiveUrl, archive);
    await extractTar(createReadStream(archive), tree);
    const testsDir = path.join(tree, 'tests');
    const tests = existsSync(testsDir) ? (await readdir(testsDir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort() : [];
    say(tests.length > 0 ? `package tests: ${tests.join(', ')}` : 'package tests: none (no tests/ folder)');

    await mkdir(path.join(work, 'home'));
    // rpm's database inside the root at /var/lib/rpm (Debian's default is per-user; see gotchas).
    await writeFile(path.join(work, 'home', '.rpmmacros'), '%_dbpath /var/lib/rpm\n');
    await mkdir(path.join(work, 'repos.d'));
    await writeFile(
      path.join(work, 'repos.d', 'lenix-test.repo'),
      [
        '[lenix-build]',
        `name=Build ${t.buildId} (signed)`,
        `baseurl=file://${repo}`,
        'gpgcheck=1',
        'repo_gpgcheck=0',
        `gpgkey=file://${path.join(work, 'key.asc')}`,
        '',
        ...(targetKeys.length > 0
          ? [`[lenix-target]`, `name=Target repository ${t.target!.name}`, `baseurl=file://${targetRepo}`, 'gpgcheck=1', 'repo_gpgcheck=0', `gpgkey=${targetKeys.join(' ')}`, '']
          : []),
        '[lenix-host-base]',
        'name=What the host offers',
        `baseurl=file://${hostBase}`,
        'gpgcheck=0',
        '',
      ].join('\n'),
    );
    const names = binaries.map((p) => p.name.replace(/\.rpm$/, ''));
    const script = path.join(work, 'test-root.sh');
    await writeFile(script, testRootScript());
    await chmod(script, 0o755);
    let output = '';
    const result = await runSandboxed({
      command: ['bash', script],
      workDir: work,
      mountWorkAt: work,
      cwd: work,
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: path.join(work, 'home'),
        LANG: 'C.UTF-8',
        LC_ALL: 'C.UTF-8',
        W: work,
        PACKAGES: names.join(' '),
        TESTS: tests.join(' '),
        RPMLINT_CONFIG: o.rpmlintConfig,
      },
      hostname: 'lenix-test',
      hide: o.hide,
      timeoutMs: o.timeoutMs,
      memoryBytes: 8 * 1024 ** 3,
      onOutput: (c) => {
        ctx.log.write(c);
        if (output.length < 4 * 1024 * 1024) output += c.toString('utf8');
      },
      signal: ctx.signal,
      // A private mount namespace where an overlay can be mounted and chroot used; still no network and a
      // read-only view of the host outside the work folder.
      extra: ['--ro-bind', hostBase, hostBase, '--ro-bind', o.rpmlintConfig, o.rpmlintConfig, ...['SYS_ADMIN', 'SYS_CHROOT', 'DAC_OVERRIDE', 'CHOWN', 'FOWNER', 'FSETID', 'SETUID', 'SETGID', 'MKNOD', 'SETFCAP'].flatMap((c) => ['--cap-add', `CAP_${c}`])],
    });
    const stages: StageResult[] = parseStages(output);
    if (result.kind === 'killed') {
      return { outcome: { kind: 'failure', code: result.why === 'timeout' ? 'TEST_TIMEOUT' : 'CANCELLED', reason: `test root ${result.why}` }, result: { stages } };
    }
    const failed = stages.filter((s) => s.outcome === 'failed');
    if (failed.length > 0 || result.code !== 0) {
      const reason = failed.map((s) => `${s.name}: ${s.detail}`).join('; ') || `test script exited ${result.code}`;
      say(`FAILED ${reason}`);
      return { outcome: { kind: 'failure', code: 'TESTS_FAILED', reason: reason.slice(0, 2000) }, result: { stages } };
    }
    say(`passed: ${stages.map((s) => `${s.name} ${s.outcome}`).join(', ')}`);
    return { outcome: { kind: 'success' }, result: { stages } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
