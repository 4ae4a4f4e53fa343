import { untestedArchesOf } from '../../core/protocol.js';
import { checkEcosystem } from '../../errata/osv.js';
import { LenixError } from '../../core/errors.js';
import { inspectPublicKey } from '../../crypto/gpg.js';
import { activeKeys, type Publisher } from '../../release/publisher.js';
import { planRecord } from '../../release/plan.js';
import type { BuildState } from '../../scheduler/task-state.js';
import type { KeyRecord, ReleaseRecord, RepoRecord, TaskRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { Pipeline } from './pipeline.js';

const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Keys the server knows (public halves only), repositories and releases with their gates. */
export class ReleaseService {
  constructor(
    private readonly deps: DepsOf<
      'clock' | 'log' | 'releases',
      'artifacts' | 'builds' | 'imports' | 'targets' | 'tasks'
    >,
    readonly publisher: Publisher,
    private readonly pipeline: Pick<Pipeline, 'stagesRecorded'>,
  ) {}

  /** A signer announces a public key; the server keeps only what gpg reads out of it. */
  async addKey(armored: string, opts: { defaultSigning?: boolean } = {}): Promise<KeyRecord> {
    const info = await inspectPublicKey(armored);
    const key = await this.deps.releases.upsertKey(
      { fingerprint: info.fingerprint, name: info.name, algorithm: info.algorithm, publicKey: armored },
      this.deps.clock.now(),
    );
    if (opts.defaultSigning !== false && !(await this.deps.releases.getSetting('signing_key')))
      await this.deps.releases.setSetting('signing_key', key.fingerprint);
    return key;
  }

  async requireKey(fingerprint: string): Promise<KeyRecord> {
    const k = await this.deps.releases.getKey(fingerprint.toUpperCase());
    if (!k) throw new LenixError('KEY_NOT_FOUND', `no key ${fingerprint.slice(0, 64)}`);
    return k;
  }

  async useKey(fingerprint: string): Promise<KeyRecord> {
    const k = await this.requireKey(fingerprint);
    await this.deps.releases.setSetting('signing_key', k.fingerprint);
    return k;
  }

  async createRepo(r: {
    name: string;
    arches: string[];
    keys: string[];
    keepDays: number;
    keepVersions?: number | undefined;
    vendor?: string | undefined;
    distro?: string | undefined;
    errataPrefix?: string | undefined;
    osvEcosystem?: string | undefined;
    /** A target whose builds the repository follows; with `autoRelease`, each that passes the gates is released. */
    follow?: string | undefined;
    autoRelease?: boolean | undefined;
  }): Promise<RepoRecord> {
    if (r.osvEcosystem !== undefined) checkEcosystem(r.osvEcosystem);
    const follow = r.follow === undefined ? null : await this.deps.store.targets.getByName(r.follow);
    if (r.follow !== undefined && !follow)
      throw new LenixError('TARGET_NOT_FOUND', `no target ${r.follow.slice(0, 64)}`);
    if (r.autoRelease && !follow)
      throw new LenixError('BAD_REQUEST', 'an auto-release repository follows a target: give --follow TARGET');
    if (!REPO_NAME.test(r.name))
      throw new LenixError('INVALID_NAME', 'repository name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}');
    const keys =
      r.keys.length > 0 ? r.keys : [(await this.deps.releases.getSetting('signing_key')) ?? ''].filter(Boolean);
    if (keys.length === 0)
      throw new LenixError(
        'NO_SIGNING_KEY',
        'a repository needs a key: --key FINGERPRINT, or a signer that has registered one',
      );
    for (const k of keys) await this.requireKey(k);
    return this.deps.releases.createRepo(
      {
        ...r,
        vendor: r.vendor ?? null,
        distro: r.distro ?? null,
        errataPrefix: r.errataPrefix ?? null,
        osvEcosystem: r.osvEcosystem ?? null,
        followTargetId: follow?.id ?? null,
        autoRelease: r.autoRelease ?? false,
        keys: keys.map((k) => k.toUpperCase()),
      },
      this.deps.clock.now(),
    );
  }

  async requireRepo(name: string): Promise<RepoRecord> {
    const r = await this.deps.releases.getRepoByName(name);
    if (!r) throw new LenixError('REPO_NOT_FOUND', `no repository ${name.slice(0, 64)}`);
    return r;
  }

  /** Key rotation: add a key (listed at once in the .repo file), retire one (dropped from it). */
  async changeKeys(
    name: string,
    change: { add?: string | undefined; retire?: string | undefined },
  ): Promise<RepoRecord> {
    const repo = await this.requireRepo(name);
    const now = this.deps.clock.now();
    let keys = [...repo.keys];
    if (change.add) {
      const k = await this.requireKey(change.add);
      if (!keys.some((x) => x.fingerprint === k.fingerprint && x.retiredAt === null))
        keys.push({ fingerprint: k.fingerprint, addedAt: now, retiredAt: null });
    }
    if (change.retire) {
      const fpr = change.retire.toUpperCase();
      // Clients configured from the .repo file after this change will not have the retired key: refuse while
      // the current snapshot still serves packages signed with it.
      const snap =
        repo.currentSnapshotId === null ? null : await this.deps.releases.getSnapshot(repo.currentSnapshotId);
      for (const p of snap?.packages ?? []) {
        if ((await this.deps.store.artifacts.findBySha(p.sha256))?.signedBy === fpr) {
          throw new LenixError(
            'KEY_IN_USE',
            `${p.name} in the current snapshot is signed with ${fpr}; release packages signed with the new key first`,
          );
        }
      }
      keys = keys.map((k) => (k.fingerprint === fpr && k.retiredAt === null ? { ...k, retiredAt: now } : k));
      if (keys.every((k) => k.retiredAt !== null))
        throw new LenixError('NO_SIGNING_KEY', 'a repository must keep at least one active key');
    }
    await this.deps.releases.setRepoKeys(repo.id, keys);
    return (await this.deps.releases.getRepo(repo.id))!;
  }

  /** Why a build may not be released yet (empty when it may). */
  async gates(buildId: number): Promise<ReleaseGate[]> {
    const build = await this.deps.store.builds.get(buildId);
    if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${buildId} does not exist`);
    if (build.state !== 'succeeded') return [{ kind: 'not-built', buildId, state: build.state }];
    const tasks = await this.deps.store.tasks.listOfBuild(buildId);
    const last = (kind: string) => tasks.filter((t) => t.kind === kind).pop();
    const gates: ReleaseGate[] = [];
    const sign = last('sign');
    if (sign?.state !== 'succeeded') gates.push({ kind: 'unsigned', buildId, task: sign ?? null });
    // Only what the ledger holds counts: a stage without its statement is not complete.
    const logged = await this.pipeline.stagesRecorded(buildId);
    for (const stage of ['source', 'build', 'sign'] as const)
      if (!logged.has(stage)) gates.push({ kind: 'unlogged', buildId, stage });
    const test = last('test');
    if (test?.state !== 'succeeded') gates.push({ kind: 'untested', buildId, task: test ?? null });
    // A tester that could not install some arch's packages (no root of that arch) said so: not tested.
    else for (const u of untestedArchesOf(test.result)) gates.push({ kind: 'untested-arch', buildId, ...u });
    return gates;
  }

  /**
   * A build of a target passed a test: once none of its tests is left to run, release it into each repository
   * that follows the target with auto-release (approved at once; the gates still apply, and a build they
   * block is logged and left for a maintainer).
   */
  async autoRelease(buildId: number): Promise<ReleaseRecord[]> {
    const build = await this.deps.store.builds.get(buildId);
    if (!build?.targetId || build.state !== 'succeeded') return [];
    const tasks = await this.deps.store.tasks.listOfBuild(buildId);
    if (tasks.some((t) => t.kind === 'test' && t.state !== 'succeeded')) return [];
    const out: ReleaseRecord[] = [];
    for (const repo of await this.deps.releases.autoReleaseRepos(build.targetId)) {
      if ((await this.deps.releases.releasesOfBuild(buildId)).some((r) => r.repoId === repo.id)) continue;
      try {
        out.push(
          await this.createRelease({ repo: repo.name, builds: [buildId], approve: true, by: 'lenix (auto-release)' }),
        );
      } catch (err) {
        this.deps.log.warn({ component: 'release', build: buildId, repo: repo.name, err }, 'not auto-released');
      }
    }
    return out;
  }

  async createRelease(input: {
    repo: string;
    builds: number[];
    /** Imported packages to publish with them (`lenix import --to`): their signatures were checked on import. */
    imports?: number[] | undefined;
    approve: boolean;
    override?: string | undefined;
    by: string;
  }): Promise<ReleaseRecord> {
    const repo = await this.requireRepo(input.repo);
    const imports = [...new Set(input.imports ?? [])];
    for (const id of imports) {
      const i = await this.deps.store.imports.get(id);
      if (!i) throw new LenixError('NOT_FOUND', `no import ${id}`);
      if (i.repo !== repo.name)
        throw new LenixError('RELEASE_BLOCKED', `import ${id} was imported for ${i.repo}, not ${repo.name}`);
    }
    if (input.builds.length === 0 && imports.length === 0) {
      // A release with no builds republishes the current packages with fresh metadata (advisories approved since).
      const current =
        repo.currentSnapshotId === null ? null : await this.deps.releases.getSnapshot(repo.currentSnapshotId);
      if (!current || current.packages.length === 0)
        throw new LenixError(
          'RELEASE_BLOCKED',
          `${repo.name} has nothing published to republish; give the builds to release`,
        );
    }
    const blocked: ReleaseGate[] = [];
    for (const b of input.builds) blocked.push(...(await this.gates(b)));
    const override = input.override?.trim() || null;
    const texts = (kinds: readonly ReleaseGate['kind'][]) =>
      blocked.filter((g) => kinds.includes(g.kind)).map(gateText);
    // A build that did not succeed can never be released; a missing test may be overridden with a reason; a
    // missing signature (or its statement) never: only signed packages are published.
    const notBuilt = texts(['not-built']);
    if (notBuilt.length > 0) throw new LenixError('RELEASE_BLOCKED', notBuilt.join('; '));
    if (blocked.length > 0 && !override)
      throw new LenixError(
        'RELEASE_BLOCKED',
        `${blocked.map(gateText).join('; ')} (a maintainer may override with a reason)`,
      );
    const unsigned = texts(['unsigned', 'unlogged']);
    if (unsigned.length > 0)
      throw new LenixError('RELEASE_BLOCKED', `${unsigned.join('; ')}: only signed packages are published`);
    const plan = await this.publisher.plan(repo, input.builds, { imports });
    const release = await this.deps.releases.createRelease(
      {
        repoId: repo.id,
        builds: input.builds,
        plan: {
          ...planRecord(plan),
          blockedBy: blocked,
          ...(imports.length > 0 ? { imports } : {}),
        } as unknown as Record<string, unknown>,
        overrideReason: blocked.length > 0 ? override : null,
        createdBy: input.by,
        state: input.approve ? 'approved' : 'planned',
        approvedBy: input.approve ? input.by : null,
      },
      this.deps.clock.now(),
    );
    if (input.approve) void this.publisher.tick();
    return release;
  }

  async approve(id: number, by: string): Promise<ReleaseRecord> {
    const r = await this.deps.releases.getRelease(id);
    if (!r) throw new LenixError('RELEASE_NOT_FOUND', `no release ${id}`);
    if (!(await this.deps.releases.moveRelease(id, 'planned', 'approved', { approvedBy: by }, this.deps.clock.now()))) {
      throw new LenixError('RELEASE_STATE', `release ${id} is ${r.state}, not planned`);
    }
    void this.publisher.tick();
    return (await this.deps.releases.getRelease(id))!;
  }

  /** The dnf .repo file for a repository, as served at /repos/NAME.repo. */
  repoFile(repo: RepoRecord, base: string): string {
    const keys = activeKeys(repo).map((k) => `${base}/keys/${k}.asc`);
    return [
      `[${repo.name}]`,
      `name=Lenix ${repo.name} - $basearch`,
      // The metalink names the mirrors and the hashes of the current repomd.xml: dnf skips a stale mirror.
      `metalink=${base}/metalink?repo=${repo.name}&arch=$basearch`,
      'enabled=1',
      'gpgcheck=1',
      'repo_gpgcheck=1',
      `gpgkey=${keys.join('\n       ')}`,
      'metadata_expire=5m',
      '',
    ].join('\n');
  }
}

/** What stands between a build and a release. */
export type ReleaseGate =
  | { readonly kind: 'not-built'; readonly buildId: number; readonly state: BuildState }
  | { readonly kind: 'unsigned'; readonly buildId: number; readonly task: TaskRecord | null }
  | { readonly kind: 'unlogged'; readonly buildId: number; readonly stage: 'source' | 'build' | 'sign' }
  | { readonly kind: 'untested'; readonly buildId: number; readonly task: TaskRecord | null }
  | { readonly kind: 'untested-arch'; readonly buildId: number; readonly arch: string; readonly reason: string };

const taskState = (what: string, t: TaskRecord | null) =>
  t ? ` (${what} task ${t.state}${t.reason ? `: ${t.reason}` : ''})` : '';

/** The one-line reason a gate gives in a RELEASE_BLOCKED error. */
export function gateText(g: ReleaseGate): string {
  switch (g.kind) {
    case 'not-built':
      return `build ${g.buildId} is ${g.state}`;
    case 'unsigned':
      return `build ${g.buildId} is not signed${taskState('sign', g.task)}`;
    case 'unlogged':
      return `build ${g.buildId} is not signed: its ${g.stage} statement is not in the ledger`;
    case 'untested':
      return `build ${g.buildId} has not passed its tests${taskState('test', g.task)}`;
    case 'untested-arch':
      return `build ${g.buildId}'s ${g.arch} packages are untested: ${g.reason}`;
  }
}
