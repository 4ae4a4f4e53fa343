import { LenixError } from '../../core/errors.js';
import { parseSha256 } from '../../core/ids.js';
import { packageInfo, readRpmFileHeader, strings, TAG } from '../../rpm/header.js';
import { orderBuilds, type OrderInput } from '../../scheduler/build-order.js';
import type { BatchRecord, BuildRecord, RepoRecord, TargetRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import type { BuildService } from './builds.js';

/** At most this many sources in one batch (a mass rebuild of a large target goes in several). */
const MAX_SOURCES = 2000;

/**
 * Batches of builds of one target in dependency order, as Koji's chain-build: the sources of each group build
 * at once; the next group starts when every build of the group has landed in the target's build repository
 * (its packages are in the repository's current snapshot). A build that fails or is cancelled ends the batch
 * (the rest are not started); cancelling the batch cancels its running builds. The order is given
 * (`chain-build A B : C D`) or found from the specs (`build --batch`, `rebuild --target`).
 */
export class BatchService {
  constructor(
    private readonly deps: DepsOf<
      'blobs' | 'clock' | 'log' | 'releases',
      'artifacts' | 'batches' | 'builds' | 'sources' | 'targets'
    >,
    private readonly builds: Pick<BuildService, 'create' | 'dependencies'>,
  ) {}

  async create(input: {
    target: string;
    groups?: readonly (readonly string[])[] | undefined;
    sources?: readonly string[] | undefined;
    by: string;
  }): Promise<BatchRecord> {
    const target = await this.requireTarget(input.target);
    let groups = (input.groups ?? []).map((g) => [...new Set(g)]).filter((g) => g.length > 0);
    if (input.sources !== undefined) groups = await this.order(target, [...new Set(input.sources)]);
    const all = groups.flat();
    if (all.length === 0) throw new LenixError('BAD_REQUEST', 'a batch needs at least one source');
    if (all.length > MAX_SOURCES) throw new LenixError('BAD_REQUEST', `a batch holds at most ${MAX_SOURCES} sources`);
    if (new Set(all).size !== all.length) throw new LenixError('BAD_REQUEST', 'a source is named in two groups');
    // Every source must exist before anything starts: a typo in the last group must not cost the first ones.
    const unknown: string[] = [];
    for (const s of all) if (!(await this.deps.store.sources.getByName(s))) unknown.push(s);
    if (unknown.length > 0)
      throw new LenixError('SOURCE_NOT_FOUND', `no source ${unknown.slice(0, 10).join(', ')}`.slice(0, 500));
    const batch = await this.deps.store.batches.create(
      { targetId: target.id, groups, createdBy: input.by },
      this.deps.clock.now(),
    );
    await this.startNext(batch);
    return (await this.deps.store.batches.get(batch.id))!;
  }

  /** Every source with a package in the target's build repository, in dependency order (a mass rebuild). */
  async rebuild(targetName: string, by: string): Promise<BatchRecord> {
    const target = await this.requireTarget(targetName);
    const snap = await this.buildRepoSnapshot(target);
    const sources = new Set<string>();
    for (const id of new Set((snap?.packages ?? []).map((p) => p.buildId))) {
      const b = await this.deps.store.builds.get(id);
      if (b) sources.add(b.sourceName);
    }
    if (sources.size === 0) throw new LenixError('BAD_REQUEST', `the build repository of ${target.name} is empty`);
    return this.create({ target: target.name, sources: [...sources].sort(), by });
  }

  async require(id: number): Promise<BatchRecord> {
    const b = await this.deps.store.batches.get(id);
    if (!b) throw new LenixError('NOT_FOUND', `no batch ${id}`);
    return b;
  }

  list(limit: number): Promise<BatchRecord[]> {
    return this.deps.store.batches.list(limit);
  }

  /** Cancel a batch: its running builds are cancelled, the groups not started never start. */
  async cancel(id: number, by: string): Promise<BatchRecord> {
    const batch = await this.require(id);
    if (await this.deps.store.batches.finish(id, 'cancelled', `cancelled by ${by}`, this.deps.clock.now()))
      for (const buildId of batch.builds.flat()) {
        const b = await this.deps.store.builds.get(buildId);
        if (b && !['succeeded', 'failed', 'cancelled'].includes(b.state))
          await this.deps.store.builds.cancel(buildId, `batch ${id} cancelled by ${by}`, this.deps.clock.now());
      }
    return this.require(id);
  }

  /** A build of a batch ended without landing (failed, cancelled, or refused by the build repository). */
  async buildEnded(build: BuildRecord, why: string): Promise<void> {
    if (build.batchId === null) return;
    if (await this.deps.store.batches.finish(build.batchId, 'failed', why, this.deps.clock.now()))
      this.deps.log.info({ component: 'batches', batch: build.batchId, build: build.id }, 'batch failed');
  }

  /** A repository published a snapshot: running batches whose target builds into it may move on. */
  async published(repo: RepoRecord): Promise<void> {
    for (const batch of await this.deps.store.batches.running()) {
      const target = await this.deps.store.targets.get(batch.targetId);
      if (target?.buildRepo === repo.name) await this.startNext(batch);
    }
  }

  /** Start the next group when every build of the current one has landed; end the batch after the last. */
  private async startNext(batch: BatchRecord): Promise<void> {
    const current = batch.builds.at(-1);
    if (current && !(await this.landed(batch, current))) return;
    const next = batch.groups[batch.builds.length];
    if (!next) {
      await this.deps.store.batches.finish(batch.id, 'succeeded', null, this.deps.clock.now());
      return;
    }
    const target = await this.deps.store.targets.get(batch.targetId);
    if (!target) return;
    // Claim the group first, so that two publishes at once cannot start it twice.
    if (!(await this.deps.store.batches.startedGroup(batch.id, batch.builds.length, []))) return;
    const ids: number[] = [];
    try {
      for (const source of next) {
        const { build } = await this.builds.create({
          source,
          target: target.name,
          batchId: batch.id,
          createdBy: batch.createdBy,
        });
        ids.push(build.id);
      }
    } catch (e) {
      const why = `group ${batch.builds.length + 1} could not start: ${e instanceof Error ? e.message : String(e)}`;
      await this.deps.store.batches.finish(batch.id, 'failed', why.slice(0, 1000), this.deps.clock.now());
    }
    await this.setGroup(batch.id, batch.builds.length, ids);
  }

  private async setGroup(id: number, index: number, ids: readonly number[]): Promise<void> {
    const b = await this.deps.store.batches.get(id);
    if (!b) return;
    const builds = b.builds.map((g, i) => (i === index ? ids : g));
    await this.deps.store.batches.setBuilds(id, builds);
  }

  /** Whether every build of a group has its packages in the target's build repository now. */
  private async landed(batch: BatchRecord, group: readonly number[]): Promise<boolean> {
    if (group.length === 0) return false;
    const target = await this.deps.store.targets.get(batch.targetId);
    const snap = target ? await this.buildRepoSnapshot(target) : null;
    const inRepo = new Set((snap?.packages ?? []).map((p) => p.sha256));
    for (const id of group) {
      const signed = (await this.deps.store.artifacts.listOfBuild(id)).filter((a) => a.kind === 'signed-rpm');
      if (signed.length === 0 || !signed.some((a) => inRepo.has(a.sha256))) return false;
    }
    return true;
  }

  /** Order sources by their specs, and by the Provides their packages in the build repository really have. */
  private async order(target: TargetRecord, sources: readonly string[]): Promise<string[][]> {
    const known = await this.builtProvides(target);
    const inputs: OrderInput[] = [];
    for (const s of sources) {
      const d = await this.builds.dependencies(s, target.macros, target.platform);
      inputs.push({ ...d, offers: [...d.offers, ...(known.get(s) ?? [])] });
    }
    return orderBuilds(inputs);
  }

  /** Source name → the Provides (automatic ones included) of its packages in the target's build repository. */
  private async builtProvides(target: TargetRecord): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const snap = await this.buildRepoSnapshot(target);
    const seen = new Set<string>();
    for (const p of snap?.packages ?? []) {
      if (seen.has(p.sha256)) continue;
      seen.add(p.sha256);
      const build = await this.deps.store.builds.get(p.buildId);
      if (!build) continue;
      const h = await this.deps.blobs.withLocalFile(parseSha256(p.sha256), (f) => readRpmFileHeader(f));
      out.set(build.sourceName, [
        ...(out.get(build.sourceName) ?? []),
        packageInfo(h).name,
        ...strings(h, TAG.PROVIDENAME),
      ]);
    }
    return out;
  }

  /** The build repository's current snapshot (null while nothing is published there). */
  private async buildRepoSnapshot(target: TargetRecord) {
    const repo = await this.deps.releases.getRepoByName(target.buildRepo);
    return repo?.currentSnapshotId ? this.deps.releases.getSnapshot(repo.currentSnapshotId) : null;
  }

  private async requireTarget(name: string): Promise<TargetRecord> {
    const t = await this.deps.store.targets.getByName(name);
    if (!t) throw new LenixError('TARGET_NOT_FOUND', `no target ${name.slice(0, 64)}`);
    return t;
  }
}
