import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { lookasideFiles, parseLookasideMetadata } from '../../core/lookaside.js';
import { findSpec } from '../../intake/git.js';
import { extractTar } from '../../intake/tar.js';
import { SANDBOX_WORK, runSandboxed, type SandboxResult } from '../../rpm/sandbox.js';
import type { BuildTaskPayload } from '../../core/protocol.js';
import type { AgentClient, ApiClient } from '../kit/client.js';
import { runAgent, type TaskContext, type TaskResult } from '../kit/run-agent.js';
import { describeBuildroot, type BuildrootRecord } from './buildroot.js';

export interface BuildNodeOptions {
  readonly client: AgentClient;
  readonly api: ApiClient;
  readonly name: string;
  readonly arches: readonly string[];
  readonly workRoot: string;
  /** Paths the sandbox must not see (server data folder, token files); $HOME is always hidden. */
  readonly hide: readonly string[];
  readonly timeoutMs: number;
  readonly memoryBytes: number;
  readonly log: Logger;
  readonly stop: AbortSignal;
}

/** The fixed host name builds see, so that the same commit gives the same RPM on any node. */
export const BUILD_HOSTNAME = 'lenix-build';

/** rpm macros that make builds reproducible where the spec allows (see ../shared/design/gotchas.md). */
export function deterministicDefines(): string[] {
  return [
    '--define', `_buildhost ${BUILD_HOSTNAME}`,
    '--define', 'clamp_mtime_to_source_date_epoch 1',
    '--define', 'use_source_date_epoch_as_buildtime 1',
    '--define', '_source_date_epoch_from_changelog 0',
  ];
}

export async function runBuildNode(o: BuildNodeOptions): Promise<void> {
  await mkdir(o.workRoot, { recursive: true, mode: 0o700 });
  const arches = [...new Set([...o.arches, 'noarch', 'src'])];
  const buildroots = new Map<string, BuildrootRecord>();
  const buildrootFor = async (arch: string) => {
    let b = buildroots.get(arch);
    if (!b) {
      b = await describeBuildroot(arch);
      buildroots.set(arch, b);
    }
    return b;
  };
  await runAgent<BuildTaskPayload>({
    client: o.client,
    name: o.name,
    role: 'build',
    arches,
    capabilities: { sandbox: 'bwrap', timeoutMs: o.timeoutMs, memoryBytes: o.memoryBytes },
    log: o.log,
    stop: o.stop,
    handle: async (ctx) => buildTask(o, ctx, await buildrootFor(ctx.task.arch === 'src' || ctx.task.arch === 'noarch' ? o.arches[0] ?? 'noarch' : ctx.task.arch)),
  });
}

async function buildTask(o: BuildNodeOptions, ctx: TaskContext<BuildTaskPayload>, buildroot: BuildrootRecord): Promise<TaskResult> {
  const t = ctx.task;
  const work = await mkdtemp(path.join(o.workRoot, `task-${t.taskId}-`));
  const say = (line: string) => ctx.log.write(`lenix: ${line}\n`);
  try {
    say(`task ${t.taskId} of build ${t.buildId}: ${t.kind === 'srpm' ? 'source package' : `binary packages for ${t.arch}`} of ${t.source.name} at ${t.commit.sha}`);
    say(`node ${o.name}; ${buildroot.hostOs}; ${buildroot.tools['rpmbuild'] ?? 'rpmbuild ?'}; ${buildroot.tools['gcc'] ?? 'no gcc'}`);
    say(`sandbox: ${buildroot.sandbox}; SOURCE_DATE_EPOCH=${t.commit.committedAt}`);
    // Host paths (work/...) are where the node writes; inside the sandbox the same folder is SANDBOX_WORK.
    const inside = (p: string) => path.join(SANDBOX_WORK, path.relative(work, p));
    const top = path.join(work, 'top');
    const out = path.join(work, 'out');
    await mkdir(top, { recursive: true });
    await mkdir(out, { recursive: true });
    const common = [
      '--define', `_topdir ${inside(top)}`,
      '--define', `_srcrpmdir ${inside(out)}`,
      '--define', `_rpmdir ${inside(out)}`,
      ...deterministicDefines(),
    ];
    let command: string[];
    let cwd = SANDBOX_WORK;
    if (t.kind === 'srpm') {
      const tree = path.join(work, 'tree');
      await mkdir(tree);
      const archive = path.join(work, 'source.tar');
      await o.api.download(t.archiveUrl, archive);
      await extractTar(createReadStream(archive), tree);
      await rm(archive);
      await fetchLookaside(o.api, tree, say);
      const specPath = findSpec(await listTree(tree), t.source.name) ?? t.specPath;
      const sourceDir = path.dirname(specPath) === 'SPECS' ? path.join(tree, 'SOURCES') : tree;
      await mkdir(sourceDir, { recursive: true });
      command = ['rpmbuild', '-bs', ...common, '--define', `_sourcedir ${inside(sourceDir)}`, '--define', `_specdir ${inside(path.dirname(path.join(tree, specPath)))}`, inside(path.join(tree, specPath))];
      cwd = inside(tree);
    } else {
      if (!t.srpm) return { outcome: { kind: 'failure', code: 'SRPM_MISSING', reason: 'binary task without an SRPM' }, result: null };
      const srpm = path.join(work, t.srpm.name);
      await o.api.download(t.srpm.url, srpm, t.srpm.sha256);
      say(`SRPM ${t.srpm.name} sha256 ${t.srpm.sha256} verified`);
      // BuildRequires are not installed on this host's rpm database (Debian hosts have none); the toolchain
      // is the host's, recorded in the buildroot record. EL hosts can use mock as the sandbox backend instead.
      command = ['rpmbuild', '--rebuild', '--nodeps', ...common, ...(t.arch === 'noarch' ? [] : ['--target', t.arch]), inside(srpm)];
    }
    say(`$ ${command.join(' ')}`);
    const result = await runSandboxed({
      command,
      workDir: work,
      cwd,
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
        HOME: homedir(),
        LANG: 'C.UTF-8',
        LC_ALL: 'C.UTF-8',
        TZ: 'UTC',
        SOURCE_DATE_EPOCH: String(t.commit.committedAt),
        TMPDIR: '/tmp',
      },
      hostname: BUILD_HOSTNAME,
      hide: [...o.hide, homedir()],
      timeoutMs: o.timeoutMs,
      memoryBytes: o.memoryBytes,
      onOutput: (c) => ctx.log.write(c),
      signal: ctx.signal,
    });
    const failure = describeFailure(result, o.timeoutMs);
    if (failure) {
      say(failure.reason);
      return { outcome: { kind: 'failure', code: failure.code, reason: failure.reason }, result: { buildroot } };
    }
    const files = (await listTree(out)).filter((f) => f.endsWith('.rpm'));
    const wanted = t.kind === 'srpm' ? files.filter((f) => f.endsWith('.src.rpm')) : files.filter((f) => !f.endsWith('.src.rpm'));
    if (wanted.length === 0) {
      say('rpmbuild succeeded but produced no package');
      return { outcome: { kind: 'failure', code: 'NO_PACKAGES', reason: 'rpmbuild produced no package' }, result: { buildroot } };
    }
    for (const f of wanted.sort()) {
      const up = await ctx.upload(path.join(out, f), { name: path.basename(f), kind: t.kind === 'srpm' ? 'srpm' : 'rpm' });
      say(`uploaded ${path.basename(f)} sha256 ${up.sha256} (${up.size} bytes)`);
    }
    say('done');
    return { outcome: { kind: 'success' }, result: { buildroot } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function describeFailure(r: SandboxResult, timeoutMs: number): { code: string; reason: string } | null {
  switch (r.kind) {
    case 'exited':
      return r.code === 0 ? null : { code: 'BUILD_FAILED', reason: `rpmbuild exited with status ${r.code}` };
    case 'killed':
      if (r.why === 'timeout') return { code: 'BUILD_TIMEOUT', reason: `build killed after the wall-clock limit of ${Math.round(timeoutMs / 1000)} s` };
      if (r.why === 'cancelled') return { code: 'CANCELLED', reason: 'build cancelled; process tree killed' };
      return { code: 'BUILD_KILLED', reason: `rpmbuild was killed by ${r.signal ?? 'a signal'} (memory limit?)` };
  }
}

/** Tarballs listed in `.NAME.metadata` come from the server's lookaside area, verified by digest. */
async function fetchLookaside(api: ApiClient, tree: string, say: (line: string) => void): Promise<void> {
  const top = await readdir(tree);
  for (const meta of lookasideFiles(top)) {
    const entries = parseLookasideMetadata(await readFile(path.join(tree, meta), 'utf8'));
    for (const e of entries) {
      const dest = path.join(tree, e.path);
      await mkdir(path.dirname(dest), { recursive: true });
      await api.download(`/api/v1/lookaside/${e.sha256}`, dest, e.sha256);
      say(`lookaside ${e.path} sha256 ${e.sha256} verified`);
    }
  }
}

async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)));
}
