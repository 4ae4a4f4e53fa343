import { platformPayload } from './root-repos.js';
import { LenixError } from '../../core/errors.js';
import {
  checkLookasidePath,
  linkOnLookasidePath,
  lookasideFiles,
  parseLookasideMetadata,
} from '../../core/lookaside.js';
import { findSpec } from '../../intake/git.js';
import { resolveSandboxIdentity, type SandboxIdentity } from '../../rpm/sandbox-identity.js';
import { clampPriority } from '../../scheduler/fair-share.js';
import { capabilityOf, type OrderInput } from '../../scheduler/build-order.js';
import type { BuildRecord, SourceRecord, TaskRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { Pipeline } from './pipeline.js';
import type { SourceService } from './sources.js';
import { checkSpec } from './spec-check.js';
import { publicSourceUrl } from '../../core/source-url.js';

export interface CreateBuild {
  readonly source: string;
  readonly ref?: string | undefined;
  readonly priority?: number | undefined;
  readonly arches?: readonly string[] | undefined;
  readonly repo?: string | undefined;
  /** The build target (its macros, buildroot repositories, arches); none: the host toolchain with --nodeps. */
  readonly target?: string | undefined;
  /** The batch that starts it (chain builds). */
  readonly batchId?: number | undefined;
  readonly createdBy: string;
}

/** Creating builds: everything is checked (ref, spec, lookaside) before anything is written. */
export class BuildService {
  /** Who spec parsing runs as (never root), read from the host once. */
  private identity: Promise<SandboxIdentity> | null = null;

  constructor(
    private readonly deps: DepsOf<
      'clock' | 'config' | 'log' | 'notifier' | 'releases',
      'artifacts' | 'builds' | 'sources' | 'targets'
    >,
    private readonly sources: SourceService,
    private readonly pipeline: Pick<Pipeline, 'emit'>,
  ) {}

  /**
   * What a source at its branch head needs and offers, for ordering a batch: its spec's static BuildRequires,
   * its packages' names and declared Provides (parsed with the target's macros, sandboxed as always), and the
   * pkg-config modules its tree ships.
   */
  async dependencies(
    name: string,
    macros: Readonly<Record<string, string>>,
    platform: string | null = null,
  ): Promise<OrderInput> {
    const source = await this.sources.require(name);
    const mirror = await this.sources.mirror(source);
    await mirror.fetch();
    const commit = await mirror.resolve(`refs/heads/${source.branch}`);
    const files = await mirror.listFiles(commit.sha);
    const specPath = findSpec(files, source.name);
    if (!specPath)
      throw new LenixError('SPEC_NOT_FOUND', `no single spec file in ${source.name} at ${commit.sha.slice(0, 12)}`);
    this.identity ??= resolveSandboxIdentity();
    const spec = await checkSpec(mirror, commit.sha, specPath, {
      identity: await this.identity,
      limits: this.deps.config.specCheckLimits,
      macros,
      platformMacros: platformPayload(platform)?.macros ?? null,
      deps: true,
    });
    return {
      source: source.name,
      needs: spec.buildRequires.map(capabilityOf),
      offers: [...spec.packages.map((p) => p.name), ...spec.provides.map(capabilityOf), ...pkgconfigOffers(files)],
    };
  }

  async create(input: CreateBuild): Promise<{ build: BuildRecord; srpmTask: TaskRecord }> {
    const source = await this.sources.require(input.source);
    return this.createFor(source, input);
  }

  async createFor(
    source: SourceRecord,
    input: Omit<CreateBuild, 'source'>,
  ): Promise<{ build: BuildRecord; srpmTask: TaskRecord }> {
    if (input.repo !== undefined && !(await this.deps.releases.getRepoByName(input.repo))) {
      throw new LenixError('REPO_NOT_FOUND', `no repository ${input.repo.slice(0, 64)}`);
    }
    const target = input.target === undefined ? null : await this.deps.store.targets.getByName(input.target);
    if (input.target !== undefined && !target)
      throw new LenixError('TARGET_NOT_FOUND', `no target ${input.target.slice(0, 64)}`);
    const outside = (input.arches ?? []).filter((a) => target && !target.arches.includes(a));
    if (outside.length > 0)
      throw new LenixError('TARGET_INVALID', `target ${target!.name} does not build for ${outside.join(', ')}`);
    const ref = input.ref ?? source.branch;
    const byId = /^[0-9a-f]{40}$/.test(ref);
    // A commit id is fetched only when the mirror lacks it (a push has just fetched it); a branch or a tag may
    // have moved, so the mirror is fetched first.
    const mirror = await this.sources.mirror(source, byId ? ref : undefined);
    if (!byId) await mirror.fetch();
    // A branch of that name first, else any ref git knows (a tag, a commit id).
    const commit = byId
      ? await mirror.resolve(ref)
      : await mirror.resolve(`refs/heads/${ref}`).catch(() => mirror.resolve(ref));
    const files = await mirror.listFiles(commit.sha);
    const specPath = findSpec(files, source.name);
    if (!specPath)
      throw new LenixError(
        'SPEC_NOT_FOUND',
        `no single spec file at the root or in SPECS/ of ${source.name} at ${commit.sha.slice(0, 12)}`,
      );

    const symlinks = new Set(await mirror.listSymlinks(commit.sha));
    for (const meta of lookasideFiles(files)) {
      const entries = parseLookasideMetadata(await mirror.readFile(commit.sha, meta));
      for (const e of entries) {
        const link = linkOnLookasidePath(e.path, symlinks);
        if (link !== null)
          throw new LenixError(
            'LOOKASIDE_PATH_UNSAFE',
            `${meta} puts ${e.path} behind the symbolic link ${link} of the source tree`,
          );
        checkLookasidePath(meta, e, specPath);
        if (!(await this.deps.store.artifacts.hasLookaside(e.sha256))) {
          throw new LenixError(
            'LOOKASIDE_INVALID',
            `${meta} names ${e.path} (${e.sha256.slice(0, 12)}…), which is not in the lookaside area; upload it with lenix lookaside upload`,
          );
        }
      }
    }

    this.identity ??= resolveSandboxIdentity();
    const spec = await checkSpec(mirror, commit.sha, specPath, {
      identity: await this.identity,
      limits: this.deps.config.specCheckLimits,
      macros: target?.macros ?? {},
      platformMacros: platformPayload(target?.platform ?? null)?.macros ?? null,
    });
    const arches =
      input.arches && input.arches.length > 0
        ? [...new Set(input.arches)]
        : [...(target?.arches ?? this.deps.config.arches)];
    const now = this.deps.clock.now();
    const recorded = await this.deps.store.sources.recordCommit(source.id, commit, now);
    const created = await this.deps.store.builds.create(
      {
        sourceId: source.id,
        commitId: recorded.id,
        ref,
        priority: clampPriority(input.priority ?? 0),
        arches,
        specPath,
        packageName: spec.name,
        packageEvr: spec.evr,
        declaredPackages: spec.packages,
        createdBy: input.createdBy,
        maxAttempts: this.deps.config.maxAttempts,
        targetRepo: input.repo ?? target?.releaseTo ?? null,
        targetId: target?.id ?? null,
        batchId: input.batchId ?? null,
      },
      now,
    );
    // The source statement goes into the ledger before any agent can lease the build's first task.
    // The source statement is public: it names a local source by its Lenix name, not its path on this server.
    await this.pipeline.emit({
      kind: 'build.created',
      build: created.build,
      sourceUrl: publicSourceUrl(source.name, source.url),
      spec: await mirror.readFile(commit.sha, specPath),
    });
    this.deps.notifier.emit('queue');
    this.deps.log.info(
      { component: 'builds', build: created.build.id, source: source.name, commit: commit.sha },
      'build created',
    );
    return created;
  }
}

/** A capability a source tree offers by its files: a `NAME.pc` or `NAME.pc.in` makes `pkgconfig(NAME)`. */
function pkgconfigOffers(files: readonly string[]): string[] {
  return files.flatMap((f) => {
    const m = /(?:^|\/)([^/]+)\.pc(?:\.in)?$/.exec(f);
    return m ? [`pkgconfig(${m[1]})`] : [];
  });
}
