import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { LenixError } from '../../core/errors.js';
import { compareEvr, parseNevra } from '../../core/nevra.js';
import {
  checkPrefix,
  checkTransition,
  nevraOf,
  parseAdvisoryId,
  parseReference,
  validateDraft,
  type Advisory,
  type AdvisoryPackage,
  type AdvisoryStatus,
  type AdvisoryType,
  type Severity,
} from '../../errata/advisory.js';
import { parseOsv } from '../../errata/osv.js';
import { parseUpdateinfo, renderUpdateinfo, type UpstreamAdvisory } from '../../errata/updateinfo.js';
import { ErrataStore, type StoredAdvisory } from '../../store/errata-store.js';
import type { ArtifactRecord, RepoRecord, SnapshotPackage, SnapshotRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import { ErrataExports } from './errata-exports.js';

export interface AdvisoryInput {
  readonly repo: string;
  /** An explicit id (e.g. the upstream advisory's number, as AlmaLinux mirrors RHSA numbers). */
  readonly id?: string | undefined;
  readonly type: AdvisoryType;
  readonly severity?: Severity | null | undefined;
  readonly title: string;
  readonly synopsis?: string | undefined;
  readonly description?: string | undefined;
  readonly references?: readonly string[] | undefined;
  readonly packages?: readonly string[] | undefined;
  readonly fromBuild?: number | undefined;
  readonly rebootSuggested?: boolean | undefined;
}

export type AdvisoryEdit = Partial<Omit<AdvisoryInput, 'repo' | 'type' | 'id'>>;

/**
 * Errata: advisories drafted, approved and released with the release that publishes their packages. A
 * package must be one Lenix built and signed (or already in the repository): dnf matches advisories by
 * exact NEVRA, so one that no repository carries would be listed but upgrade nothing. Exports (OVAL per
 * repository, OSV per advisory, an Atom feed) are rewritten into DATA/errata/ on every publish.
 */
export class ErrataService {
  readonly store: ErrataStore;

  private readonly exports: ErrataExports;

  constructor(
    private readonly deps: DepsOf<'clock' | 'config' | 'log' | 'releases', 'artifacts' | 'builds' | 'db' | 'dialect'>,
  ) {
    this.store = new ErrataStore(deps.store.db, deps.store.dialect);
    this.exports = new ErrataExports(deps, this.store, () => this.exportDir);
  }

  get exportDir(): string {
    return path.join(this.deps.config.dataDir, 'errata');
  }

  private async repo(name: string): Promise<RepoRecord> {
    const r = await this.deps.releases.getRepoByName(name);
    if (!r) throw new LenixError('REPO_NOT_FOUND', `no repository ${name.slice(0, 64)}`);
    return r;
  }

  async require(id: string): Promise<StoredAdvisory> {
    const a = await this.store.get(id);
    if (!a) throw new LenixError('ERRATA_NOT_FOUND', `no advisory ${id.slice(0, 40)}`);
    return a;
  }

  /** The advisory's package from a NEVRA: a signed package Lenix built, or one in the repository now. */
  private async packageOf(nevra: string, repo: RepoRecord): Promise<AdvisoryPackage> {
    let n: ReturnType<typeof parseNevra>;
    try {
      n = parseNevra(nevra.replace(/\.rpm$/, ''));
    } catch {
      throw new LenixError('ERRATA_INVALID', `not a NEVRA: ${nevra.slice(0, 100)} (name-[epoch:]version-release.arch)`);
    }
    const canonical = nevraOf({ ...n, epoch: n.epoch ?? 0, src: '', filename: '', sha256: null });
    const built = (await this.deps.store.artifacts.findByNevra(canonical, 'signed-rpm')).pop();
    if (built) return this.fromArtifact(built);
    const current =
      repo.currentSnapshotId === null ? null : await this.deps.releases.getSnapshot(repo.currentSnapshotId);
    const inRepo = current?.packages.find((p) => p.nevra === canonical);
    if (inRepo) {
      const a = await this.deps.store.artifacts.findBySha(inRepo.sha256);
      if (a) return this.fromArtifact(a);
    }
    throw new LenixError(
      'ERRATA_PACKAGE_UNKNOWN',
      `${canonical} is neither in ${repo.name} nor a package Lenix built and signed`,
    );
  }

  private async fromArtifact(a: ArtifactRecord): Promise<AdvisoryPackage> {
    const n = parseNevra(a.nevra ?? a.name.replace(/\.rpm$/, ''));
    const srpm = (await this.deps.store.artifacts.listOfBuild(a.buildId)).find((x) => x.kind === 'srpm');
    return {
      name: n.name,
      epoch: n.epoch ?? 0,
      version: n.version,
      release: n.release,
      arch: n.arch,
      src: srpm?.name ?? '',
      filename: a.name,
      sha256: a.sha256,
    };
  }

  private async packagesOf(
    input: Pick<AdvisoryInput, 'packages' | 'fromBuild'>,
    repo: RepoRecord,
  ): Promise<AdvisoryPackage[]> {
    const out: AdvisoryPackage[] = [];
    if (input.fromBuild !== undefined) {
      const build = await this.deps.store.builds.get(input.fromBuild);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `no build ${input.fromBuild}`);
      const signed = (await this.deps.store.artifacts.listOfBuild(build.id)).filter((a) => a.kind === 'signed-rpm');
      if (signed.length === 0)
        throw new LenixError('ERRATA_PACKAGE_UNKNOWN', `build ${build.id} has no signed packages yet`);
      for (const a of signed) out.push(await this.fromArtifact(a));
    }
    for (const n of input.packages ?? []) out.push(await this.packageOf(n, repo));
    return out;
  }

  async create(input: AdvisoryInput, createdBy: string): Promise<StoredAdvisory> {
    const repo = await this.repo(input.repo);
    const references = (input.references ?? []).map(parseReference);
    const draft = {
      type: input.type,
      severity: input.severity ?? null,
      title: input.title,
      synopsis: input.synopsis ?? '',
      description: input.description ?? '',
      rebootSuggested: input.rebootSuggested ?? false,
      references,
      packages: [] as AdvisoryPackage[],
    };
    validateDraft(draft); // the fields first: a bad CVE is named before packages are looked up
    const packages = await this.packagesOf(input, repo);
    validateDraft({ ...draft, packages });
    const prefix = checkPrefix(repo.errataPrefix ?? this.deps.config.errataPrefix);
    const year = new Date(this.deps.clock.now()).getUTCFullYear();
    if (input.id !== undefined) {
      const want = parseAdvisoryId(input.id);
      if (want.prefix !== prefix || want.type !== input.type)
        throw new LenixError(
          'ERRATA_INVALID',
          `${input.id} does not fit repository ${repo.name}: its ${input.type} advisories are ${prefix}${input.type[0]!.toUpperCase()}A-YYYY:NNNN`,
        );
    }
    const created = await this.store.create(
      {
        ...draft,
        packages,
        prefix,
        ...(input.id !== undefined ? { id: input.id } : {}),
        year,
        repoId: repo.id,
        upstreamId: null,
        createdBy,
      },
      this.deps.clock.now(),
    );
    this.deps.log.info({ component: 'errata', advisory: created.id, repo: repo.name }, 'advisory drafted');
    return (await this.store.get(created.id))!;
  }

  async edit(id: string, e: AdvisoryEdit): Promise<StoredAdvisory> {
    const a = await this.require(id);
    const repo = await this.repo(a.repo);
    if (a.status === 'released' && (e.packages !== undefined || e.fromBuild !== undefined)) {
      throw new LenixError(
        'ERRATA_STATE',
        `${id} is released: its packages are what clients matched and cannot change; issue a new advisory`,
      );
    }
    const references = e.references === undefined ? a.references : e.references.map(parseReference);
    const packages =
      e.packages === undefined && e.fromBuild === undefined ? a.packages : await this.packagesOf(e, repo);
    const next = {
      type: a.type,
      severity: e.severity === undefined ? a.severity : e.severity,
      title: e.title ?? a.title,
      synopsis: e.synopsis ?? a.synopsis,
      description: e.description ?? a.description,
      rebootSuggested: e.rebootSuggested ?? a.rebootSuggested,
      references,
      packages,
    };
    validateDraft(next);
    const { type: _type, ...set } = next;
    // A released advisory's corrections are a new version clients can see (updated date and version go up).
    if (!(await this.store.update(id, a.status, set, this.deps.clock.now(), a.status === 'released'))) {
      throw new LenixError('ERRATA_STATE', `${id} changed while it was being edited; try again`);
    }
    if (a.status === 'released') await this.writeExports();
    return (await this.store.get(id))!;
  }

  async approve(id: string, by: string): Promise<StoredAdvisory> {
    const a = await this.require(id);
    checkTransition(a.status, 'approved');
    if (a.packages.length === 0) throw new LenixError('ERRATA_INVALID', `${id} lists no packages`);
    if (!(await this.store.setStatus(id, 'draft', 'approved', { approvedBy: by }, this.deps.clock.now())))
      throw new LenixError('ERRATA_STATE', `${id} is no longer a draft`);
    this.deps.log.info({ component: 'errata', advisory: id, by }, 'advisory approved');
    return (await this.store.get(id))!;
  }

  /**
   * What a new snapshot's updateinfo carries: the repository's released advisories and every approved one
   * whose packages are all in the snapshot (exact NEVRA). Approved ones with missing packages wait.
   */
  async forSnapshot(
    repo: RepoRecord,
    packages: readonly SnapshotPackage[],
  ): Promise<{ advisories: StoredAdvisory[]; waiting: string[] }> {
    const have = new Set(packages.map((p) => p.nevra));
    const released = await this.store.list({ repoId: repo.id, status: 'released', limit: 100_000 });
    const approved = await this.store.list({ repoId: repo.id, status: 'approved', limit: 100_000 });
    const ready = approved.filter((a) => a.packages.every((p) => have.has(nevraOf(p))));
    return {
      advisories: [...released, ...ready],
      waiting: approved.filter((a) => !ready.includes(a)).map((a) => a.id),
    };
  }

  /** updateinfo.xml for one arch folder of a snapshot, or null when there is nothing to say. */
  updateinfo(repo: RepoRecord, arch: string, advisories: readonly Advisory[]): string | null {
    const mine = advisories.filter((a) => a.packages.some((p) => p.arch === arch || p.arch === 'noarch'));
    if (mine.length === 0) return null;
    return renderUpdateinfo(mine, {
      from: this.deps.config.errataFrom,
      rights: this.deps.config.errataRights,
      collection: `${repo.name}-${arch}`,
      arches: [arch],
    });
  }

  /** A snapshot went live: its approved advisories are released with it, and the exports are rewritten. */
  async published(repo: RepoRecord, snap: SnapshotRecord): Promise<void> {
    for (const id of snap.advisories) {
      if (
        await this.store.setStatus(
          id,
          'approved',
          'released',
          { releaseId: snap.releaseId ?? 0 },
          this.deps.clock.now(),
        )
      ) {
        this.deps.log.info(
          { component: 'errata', advisory: id, repo: repo.name, snapshot: snap.id },
          'advisory released',
        );
      }
    }
    await this.writeExports();
  }

  /** OVAL per repository, OSV per advisory, the Atom feed (errata-exports.ts). One rewrite at a time. */
  writeExports(): Promise<void> {
    return this.exports.write();
  }

  async ensureExports(): Promise<void> {
    const present = await readdir(this.exportDir).catch(() => null);
    if (!present) await this.writeExports();
  }

  /**
   * Import an upstream updateinfo.xml or OSV record: for each upstream advisory, propose (as drafts) an
   * advisory of ours for the packages Lenix built at the same or a later version, linking the upstream id.
   */
  async import(
    repoName: string,
    content: string,
    createdBy: string,
  ): Promise<{ proposed: StoredAdvisory[]; skipped: { upstream: string; why: string }[] }> {
    const repo = await this.repo(repoName);
    const upstream: UpstreamAdvisory[] = content.trimStart().startsWith('{')
      ? [parseOsv(content)]
      : parseUpdateinfo(content);
    const proposed: StoredAdvisory[] = [];
    const skipped: { upstream: string; why: string }[] = [];
    const existing = await this.store.list({ repoId: repo.id, limit: 100_000 });
    for (const u of upstream) {
      if (existing.some((a) => a.upstreamId === u.id)) {
        skipped.push({ upstream: u.id, why: 'already imported' });
        continue;
      }
      if (u.type === 'security' && !u.severity) {
        skipped.push({ upstream: u.id, why: 'a security advisory without a severity' });
        continue;
      }
      const packages: AdvisoryPackage[] = [];
      for (const up of u.packages) {
        const ours = await this.builtAtLeast(up);
        if (ours && !packages.some((p) => p.filename === ours.filename)) packages.push(ours);
      }
      if (packages.length === 0) {
        skipped.push({ upstream: u.id, why: 'Lenix has built none of its packages at that version or later' });
        continue;
      }
      const prefix = checkPrefix(repo.errataPrefix ?? this.deps.config.errataPrefix);
      const draft = {
        type: u.type,
        severity: u.severity,
        title: u.title || u.id,
        synopsis: `Rebuild of ${u.id}`,
        description: u.description,
        rebootSuggested: u.rebootSuggested,
        references: u.references,
        packages,
      };
      validateDraft(draft);
      const made = await this.store.create(
        {
          ...draft,
          prefix,
          year: new Date(this.deps.clock.now()).getUTCFullYear(),
          repoId: repo.id,
          upstreamId: u.id,
          createdBy,
        },
        this.deps.clock.now(),
      );
      proposed.push((await this.store.get(made.id))!);
    }
    return { proposed, skipped };
  }

  /** The newest signed package Lenix built with this name (and arch, when given) at an EVR ≥ the upstream one. */
  private async builtAtLeast(
    up: Pick<AdvisoryPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>,
  ): Promise<AdvisoryPackage | null> {
    const rows = await this.deps.store.artifacts.findSignedByName(up.name);
    let best: { a: ArtifactRecord; n: ReturnType<typeof parseNevra> } | null = null;
    for (const a of rows) {
      const n = parseNevra(a.nevra ?? '');
      if (up.arch && up.arch !== n.arch && n.arch !== 'noarch') continue;
      if (compareEvr(n, up) < 0) continue;
      if (!best || compareEvr(n, best.n) > 0) best = { a, n };
    }
    return best ? this.fromArtifact(best.a) : null;
  }

  async list(f: {
    repo?: string;
    status?: AdvisoryStatus;
    type?: AdvisoryType;
    severity?: Severity;
  }): Promise<StoredAdvisory[]> {
    const repoId = f.repo ? (await this.repo(f.repo)).id : undefined;
    return this.store.list({
      ...(repoId !== undefined ? { repoId } : {}),
      ...(f.status ? { status: f.status } : {}),
      ...(f.type ? { type: f.type } : {}),
      ...(f.severity ? { severity: f.severity } : {}),
    });
  }
}
