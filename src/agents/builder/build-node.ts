import { archTruth } from './arch-truth.js';
import { x86LevelArgs } from './x86-level-args.js';
import { platformArgs, platformPackages } from './platform-args.js';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parsePlainName } from '../../core/ids.js';
import { sourceDirOf } from '../../core/lookaside.js';
import {
  linkOnLookasidePath,
  lookasideFiles,
  parseLookasideMetadata,
  type LookasideEntry,
} from '../../core/lookaside.js';
import { findSpec } from '../../intake/git.js';
import { indexTar } from '../../intake/tar.js';
import { describeIdentity, type SandboxIdentity } from '../../rpm/sandbox-identity.js';
import {
  SANDBOX_UID,
  SANDBOX_WORK,
  describeLimits,
  launcher,
  runSandboxed,
  type SandboxLimits,
} from '../../rpm/sandbox.js';
import { macroDefines, type BuildTaskPayload } from '../../core/protocol.js';
import type { AgentClient } from '../../client/agent.js';
import type { ApiClient } from '../../client/http.js';
import { LenixClient } from '../../client/lenix.js';
import { runAgent, type TaskContext, type TaskReport } from '../kit/run-agent.js';
import { stepTimer } from '../kit/step-timer.js';
import type { BuildrootRecord } from '../../core/protocol.js';
import { describeBuildroot } from './buildroot.js';
import { hasDynamicBuildRequires, packageInfo, readRpmFileHeader, requirements } from '../../rpm/header.js';
import { buildHostBase } from '../kit/host-base.js';
import { listUsrFolders } from '../kit/usr-folders.js';
import { keepRoot, prepareBuildroot, readInstalled, type PreparedBuildroot } from './buildroot-input.js';
import { INSTALLED_LIST, MISSING_STATUS, ROOT_CACHE, ROOT_FAILED_STATUS } from './buildroot-script.js';
import { describeFailure } from './build-failure.js';
import { LenixError } from '../../core/errors.js';
import { describeSystemRoot, emulationProblem, rootAccessProblem, type SystemRoot } from '../kit/system-root.js';

export interface BuildNodeOptions {
  readonly client: AgentClient;
  readonly api: ApiClient;
  readonly name: string;
  readonly arches: readonly string[];
  readonly workRoot: string;
  /** Who package code runs as on this host (never root). */
  readonly identity: SandboxIdentity;
  readonly limits: SandboxLimits;
  readonly log: Logger;
  readonly stop: AbortSignal;
  /**
   * Build in this system root instead of the host's /usr (a foreign architecture through qemu-user): the node then
   * serves the root's arch only, never SRPMs or noarch, which the host builds natively in a fraction of the time.
   */
  readonly systemRoot?: SystemRoot;
}

/** The fixed host name builds see, so that the same commit gives the same RPM on any node. */
export const BUILD_HOSTNAME = 'lenix-build';

/** rpm macros that make builds reproducible where the spec allows (see ../shared/design/gotchas.md). */
export function deterministicDefines(): string[] {
  return [
    '--define',
    `_buildhost ${BUILD_HOSTNAME}`,
    '--define',
    'clamp_mtime_to_source_date_epoch 1',
    '--define',
    'use_source_date_epoch_as_buildtime 1',
    '--define',
    '_source_date_epoch_from_changelog 0',
  ];
}

export async function runBuildNode(o: BuildNodeOptions): Promise<void> {
  await mkdir(o.workRoot, { recursive: true, mode: 0o700 });
  const root = o.systemRoot;
  if (root) {
    const problem = await emulationProblem(root.info.arch);
    if (problem)
      throw new LenixError('EMULATION_UNAVAILABLE', `cannot build in the ${root.info.arch} root: ${problem}`);
    const access = await rootAccessProblem(root, launcher(o.identity));
    if (access) throw new LenixError('SYSTEM_ROOT_INVALID', access);
  }
  const arches = root ? [root.info.arch] : [...new Set([...o.arches, 'noarch', 'src'])];
  // The folders of the sandbox's /usr, for the skeleton of each buildroot this node makes.
  const usrFolders = await listUsrFolders(path.join(root?.dir ?? '/', 'usr'), path.join(o.workRoot, 'usr-folders'));
  const buildroots = new Map<string, BuildrootRecord>();
  const buildrootFor = async (arch: string) => {
    let b = buildroots.get(arch);
    if (!b) {
      b = root ? await describeSystemRoot(root) : await describeBuildroot(arch);
      buildroots.set(arch, b);
    }
    return b;
  };
  await runAgent<BuildTaskPayload>({
    client: o.client,
    name: o.name,
    role: 'build',
    arches,
    capabilities: {
      sandbox: 'bwrap',
      identity: o.identity.kind,
      ...o.limits,
      ...(root ? { systemRoot: `${root.info.suite} ${root.info.debianArch}` } : {}),
    },
    log: o.log,
    stop: o.stop,
    handle: async (ctx) =>
      buildTask(
        o,
        ctx,
        await buildrootFor(
          ctx.task.arch === 'src' || ctx.task.arch === 'noarch' ? (o.arches[0] ?? 'noarch') : ctx.task.arch,
        ),
        usrFolders,
      ),
  });
}

async function buildTask(
  o: BuildNodeOptions,
  ctx: TaskContext<BuildTaskPayload>,
  hostBuildroot: BuildrootRecord,
  usrFolders: string,
): Promise<TaskReport> {
  let buildroot = hostBuildroot;
  const t = ctx.task;
  const work = await mkdtemp(path.join(o.workRoot, `task-${t.taskId}-`));
  const say = (line: string) => ctx.log.write(`lenix: ${line}\n`);
  const took = stepTimer(say);
  try {
    say(
      `task ${t.taskId} of build ${t.buildId}: ${t.kind === 'srpm' ? 'source package' : `binary packages for ${t.arch}`} of ${t.source.name} at ${t.commit.sha}`,
    );
    say(
      `node ${o.name}; ${buildroot.hostOs}; ${buildroot.tools['rpmbuild'] ?? 'rpmbuild ?'}; ${buildroot.tools['gcc'] ?? 'no gcc'}`,
    );
    say(`sandbox: ${buildroot.sandbox}; SOURCE_DATE_EPOCH=${t.commit.committedAt}`);
    say(
      `sandbox user: uid ${SANDBOX_UID} inside = ${describeIdentity(o.identity)}; no capabilities; limits: ${describeLimits(o.limits)}`,
    );
    // Everything the sandbox gets is in `in/`, written here by the node; the source tree is unpacked only
    // inside the sandbox, so no path from the package is ever opened on the host.
    const input = path.join(work, 'in');
    const out = path.join(work, 'out');
    await mkdir(input);
    await mkdir(out);
    const inRoot = t.kind === 'binary' && t.target !== null && t.target !== undefined;
    const common = [
      '--define',
      `_topdir ${SANDBOX_WORK}/top`,
      '--define',
      `_srcrpmdir ${SANDBOX_WORK}/out`,
      '--define',
      `_rpmdir ${SANDBOX_WORK}/out`,
      // rpmbuild opens an rpm database even with --nodeps: an empty one in the work folder, not the host's.
      // In a buildroot it is the root's own, which rpmbuild checks the BuildRequires against.
      ...(inRoot ? [] : ['--define', `_dbpath ${SANDBOX_WORK}/rpmdb`]),
      ...deterministicDefines(),
      ...macroDefines(t.target?.macros ?? {}),
    ];
    if (t.target)
      say(
        `target ${t.target.name}: ${
          Object.entries(t.target.macros)
            .map(([k, v]) => `%${k} ${v}`)
            .join('; ') || 'no macros'
        }`,
      );
    const buildEnv = {
      PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TZ: 'UTC',
      SOURCE_DATE_EPOCH: String(t.commit.committedAt),
      TMPDIR: '/tmp',
    };
    let prepared: PreparedBuildroot | null = null;
    let command: string[];
    if (t.kind === 'srpm') {
      const archive = path.join(input, 'source.tar');
      await o.api.download(t.archiveUrl, archive);
      const index = await indexTar(createReadStream(archive), (f) => lookasideFiles([f]).length > 0, 4 * 1024 * 1024);
      const lookaside: LookasideEntry[] = [];
      for (const meta of lookasideFiles(index.files))
        lookaside.push(...parseLookasideMetadata(index.contents.get(meta) ?? ''));
      for (const e of lookaside) {
        const link = linkOnLookasidePath(e.path, index.symlinks);
        if (link !== null) {
          const reason = `the source tree has a symbolic link ${link} on the path of lookaside file ${e.path}; refusing to place it`;
          say(reason);
          return { outcome: { kind: 'failure', code: 'LOOKASIDE_PATH_UNSAFE', reason }, result: { buildroot } };
        }
      }
      if (lookaside.length > 0) await mkdir(path.join(input, 'lookaside'));
      for (const e of lookaside) {
        await new LenixClient(o.api).lookaside.download(e.sha256, path.join(input, 'lookaside', e.sha256));
        say(`lookaside ${e.path} sha256 ${e.sha256} verified`);
      }
      const specPath = findSpec(index.files, t.source.name) ?? t.specPath;
      const specDir = path.posix.dirname(specPath);
      const sourceDir = path.posix.join('tree', sourceDirOf(specPath));
      const rpmbuild = [
        'rpmbuild',
        '-bs',
        ...(await platformArgs(t.target, input, `${SANDBOX_WORK}/in`)),
        ...common,
        '--define',
        `_sourcedir ${SANDBOX_WORK}/${sourceDir}`,
        '--define',
        `_specdir ${path.posix.join(SANDBOX_WORK, 'tree', specDir)}`,
        path.posix.join(SANDBOX_WORK, 'tree', specPath),
      ];
      say(`$ ${rpmbuild.join(' ')}`);
      command = [
        'bash',
        '-c',
        UNPACK_TREE,
        'lenix-unpack',
        sourceDir,
        ...lookaside.flatMap((e) => [e.sha256, e.path]),
        '--',
        ...rpmbuild,
      ];
    } else {
      if (!t.srpm)
        return {
          outcome: { kind: 'failure', code: 'SRPM_MISSING', reason: 'binary task without an SRPM' },
          result: null,
        };
      const name = parsePlainName(t.srpm.name);
      await o.api.download(t.srpm.url, path.join(input, name), t.srpm.sha256);
      say(`SRPM ${name} sha256 ${t.srpm.sha256} verified`);
      const levels = inRoot || o.systemRoot ? [] : await x86LevelArgs(t.arch, input, `${SANDBOX_WORK}/in`);
      if (levels.length > 0) say(`${t.arch}: this rpm lacks the x86-64 levels (4.19 added them); supplying them`);
      const rebuild = [...levels, ...common, ...(t.arch === 'noarch' ? [] : ['--target', t.arch])];
      if (inRoot && o.systemRoot) {
        const reason = `buildroots of build targets are not made in a system root yet (target ${t.target!.name}, ${t.arch} root)`;
        say(reason);
        return { outcome: { kind: 'failure', code: 'BUILDROOT_FAILED', reason }, result: { buildroot } };
      }
      if (inRoot) {
        if (o.identity.kind !== 'system-user' || !o.identity.subordinate) {
          const reason =
            'buildroots need the sandbox user with subordinate ids (run the node as root after scripts/bootstrap.sh)';
          say(reason);
          return { outcome: { kind: 'failure', code: 'BUILDROOT_FAILED', reason }, result: { buildroot } };
        }
        const srpm = await readRpmFileHeader(path.join(input, name));
        const building = packageInfo(srpm).name;
        // The platform package first (its macros for rpmbuild in the root), then the BuildRequires.
        const platform = platformPackages(t.target, building);
        const buildRequires = [...platform, ...requirements(srpm)];
        if (t.target?.platform && platform.length === 0)
          rebuild.unshift(...(await platformArgs(t.target, input, `${SANDBOX_WORK}/in`)));
        say(
          `BuildRequires: ${buildRequires.join(', ') || 'none'}${hasDynamicBuildRequires(srpm) ? ' (and %generate_buildrequires)' : ''}`,
        );
        prepared = await prepareBuildroot({
          api: o.api,
          workRoot: o.workRoot,
          input,
          target: t.target!,
          hostBase: await buildHostBase(o.workRoot),
          usrFolders,
          buildRequires,
          rpmbuildArgs: rebuild,
          buildEnv: { ...buildEnv, HOME: SANDBOX_WORK, USER: 'builder' },
          srpmName: name,
          sourceName: building,
          dynamic: hasDynamicBuildRequires(srpm),
          buildUid: SANDBOX_UID,
          say,
        });
        command = ['bash', `${SANDBOX_WORK}/in/buildroot.sh`];
        say(
          `$ rpmbuild --rebuild ${rebuild.join(' ')} ${SANDBOX_WORK}/in/${name} (in the buildroot${prepared.cached ? ", from the node's cache" : ''})`,
        );
      } else {
        // Without a target, BuildRequires are not installed: the toolchain is the host's, recorded in the
        // buildroot record.
        command = ['rpmbuild', '--rebuild', '--nodeps', ...rebuild, `${SANDBOX_WORK}/in/${name}`];
        say(`$ ${command.join(' ')}`);
      }
    }
    took('inputs');
    let missing = '';
    let lastSaid = '';
    const result = await runSandboxed({
      identity: o.identity,
      limits: o.limits,
      inside: prepared ? 'root' : 'user',
      command,
      env: prepared
        ? { ...buildEnv, HOME: SANDBOX_WORK, W: SANDBOX_WORK, ...prepared.env }
        : { ...buildEnv, HOME: SANDBOX_WORK, USER: 'builder' },
      hostname: BUILD_HOSTNAME,
      inputDir: input,
      ...(o.systemRoot ? { systemRoot: o.systemRoot.dir } : {}),
      output: {
        from: `${SANDBOX_WORK}/out`,
        to: out,
        accept: (f) =>
          (f.endsWith('.rpm') && (t.kind === 'srpm') === f.endsWith('.src.rpm')) ||
          (prepared !== null && (f === INSTALLED_LIST || f === ROOT_CACHE)),
      },
      onOutput: (c) => {
        ctx.log.write(c);
        if (prepared && missing.length < 64 * 1024)
          for (const m of c.toString('utf8').matchAll(/^@@LENIX-MISSING (.+)$/gm)) missing += `${m[1]}\n`;
        if (prepared) for (const m of c.toString('utf8').matchAll(/^lenix: (.+)$/gm)) lastSaid = m[1]!.slice(0, 500);
      },
      signal: ctx.signal,
    });
    if (prepared && result.kind === 'exited' && result.code === MISSING_STATUS) {
      const caps = [...new Set(missing.split('\n').filter(Boolean))];
      const reason = `nothing in the repositories of target ${t.target!.name} provides ${caps.join(', ') || 'a BuildRequires (see the log)'}`;
      say(reason);
      return { outcome: { kind: 'failure', code: 'BUILDREQUIRES_MISSING', reason }, result: { buildroot } };
    }
    if (prepared && result.kind === 'exited' && result.code === ROOT_FAILED_STATUS) {
      const reason = `the buildroot could not be made: ${lastSaid || 'see the log'}`;
      return { outcome: { kind: 'failure', code: 'BUILDROOT_FAILED', reason }, result: { buildroot } };
    }
    took(prepared ? 'buildroot and rpmbuild' : 'rpmbuild');
    const failure = describeFailure(result, o.limits);
    if (failure) {
      say(failure.reason);
      return { outcome: { kind: 'failure', code: failure.code, reason: failure.reason }, result: { buildroot } };
    }
    if (prepared) {
      const { installed, unknown } = await readInstalled(out, prepared);
      if (unknown.length > 0)
        say(`the root lists packages no repository offered (not recorded): ${unknown.join(', ')}`);
      await keepRoot(out, prepared.cacheFile, installed);
      buildroot = {
        ...buildroot,
        target: t.target!.name,
        installed,
        cached: prepared.cached,
        sandbox: `${buildroot.sandbox}; a buildroot: dnf installs as root of the sandbox's own user namespace (no user namespaces below it), rpmbuild runs chrooted into it as uid ${SANDBOX_UID} with no capability and no_new_privs`,
      };
      say(`buildroot: ${installed.map((p) => p.nevra).join(', ')}`);
    }
    const wanted = (result.kind === 'exited' ? result.outputs : []).filter((f) => f.endsWith('.rpm'));
    if (wanted.length === 0) {
      say('rpmbuild succeeded but produced no package');
      return {
        outcome: { kind: 'failure', code: 'NO_PACKAGES', reason: 'rpmbuild produced no package' },
        result: { buildroot },
      };
    }
    if (t.kind === 'binary') {
      // Read as the sandbox user, within the build's own limits: the build could not have made more.
      const wrong = await archTruth(out, wanted, t.arch, say, {
        launcher: launcher(o.identity),
        memoryBytes: o.limits.memoryBytes,
        timeoutMs: o.limits.timeoutMs,
        maxBytes: o.limits.diskBytes * 2,
      });
      if (wrong) {
        say(wrong);
        return { outcome: { kind: 'failure', code: 'ARCH_MISMATCH', reason: wrong }, result: { buildroot } };
      }
      say(`arch check: every executable and shared library is ${t.arch === 'noarch' ? 'noarch (not judged)' : t.arch}`);
      took('arch check');
    }
    for (const f of wanted) {
      const up = await ctx.upload(path.join(out, f), { name: f, kind: t.kind === 'srpm' ? 'srpm' : 'rpm' });
      say(`uploaded ${f} sha256 ${up.sha256} (${up.size} bytes)`);
    }
    took('upload');
    say('done');
    return { outcome: { kind: 'success' }, result: { buildroot } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Runs inside the sandbox before rpmbuild: unpack the source archive, put each lookaside file at its path
 * (the node already refused trees with a link on such a path), then run the rest of the arguments in the tree.
 * Arguments: the folder for sources, then pairs of sha256 and path, then `--` and the command.
 */
const UNPACK_TREE = String.raw`set -eu
mkdir -p tree
tar -x --no-same-owner -f in/source.tar -C tree
sources=$1; shift
mkdir -p "$sources"
while [ "$1" != "--" ]; do
  mkdir -p "tree/$(dirname -- "$2")"
  cp -- "in/lookaside/$1" "tree/$2"
  shift 2
done
shift
cd tree
exec "$@"
`;
