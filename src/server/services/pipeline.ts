import path from 'node:path';
import { LenixError } from '../../core/errors.js';
import { Publisher } from '../../release/publisher.js';
import { planRecord } from '../../release/plan.js';
import { metadataSignaturesOf } from '../../core/protocol.js';
import type { BuildState } from '../../scheduler/task-state.js';
import type { BuildRecord, ReleaseRecord, RepoRecord, SnapshotRecord, TaskRecord } from '../../store/records.js';
import type { DepsOf } from '../context.js';
import { isTransientDbError } from '../../store/rows.js';
import type { Attestations } from './attestations.js';
import type { ErrataService } from './errata.js';

/**
 * The build → sign → test → release flow in one place.
 *
 * The queue moves a build along by itself, inside the transaction that completes each task (store/queue,
 * scheduler/task-state.ts `nextStage`): srpm → binary (one task per target arch) → sign → test. Everything
 * else that follows a step is an event here, and the table `FOLLOWS` (built in the constructor) says what
 * happens after each:
 *
 *   event               what follows
 *   build.created       the source statement (commit, tree, spec digest) enters the ledger
 *   task.ended          srpm/binary/sign/test: the stage's statement enters the ledger, which is what lets
 *                       the next stage be handed out (waitForStatements); repomd: the publisher picks up
 *                       the signed metadata
 *   build.signed        (after the next stage's agents are woken) the signed packages' repository metadata
 *                       is derived, and a build of a target lands in the target's build repository at once
 *                       (landInBuildRepo: no test gate, no approval — it is the buildroot, not a release)
 *   build.not-landed    a build of a target its build repository refused (batches end)
 *   snapshot.published  release statements for every package, then the errata exports (OSV, OVAL, feed)
 *
 * Services made after the pipeline add their steps with `also` (batches follow task.ended, build.not-landed
 * and snapshot.published).
 *
 * A publish asks the signer for metadata signatures by queueing a `repomd` task (requestMetadataSignature).
 */
export type PipelineEvent =
  | { readonly kind: 'build.created'; readonly build: BuildRecord; readonly sourceUrl: string; readonly spec: string }
  | {
      readonly kind: 'task.ended';
      readonly task: TaskRecord;
      readonly buildState: BuildState;
      /** The build's batch, if any: batches end when a build of theirs fails. */
      readonly batchId: number | null;
    }
  | { readonly kind: 'build.signed'; readonly buildId: number }
  | { readonly kind: 'build.not-landed'; readonly build: BuildRecord; readonly reason: string }
  | {
      readonly kind: 'snapshot.published';
      readonly release: ReleaseRecord;
      readonly repo: RepoRecord;
      readonly snapshot: SnapshotRecord;
    };

type Step<K extends PipelineEvent['kind']> = (e: Extract<PipelineEvent, { kind: K }>) => Promise<void>;
type Follows = { [K in PipelineEvent['kind']]: Step<K>[] };

/** How long a sign or test lease waits for the previous stage's statement before refusing (STATEMENT_MISSING). */
const STATEMENT_WAIT_MS = 5000;
/** Another server process may record the statement: waiters also look again at this interval. */
const STATEMENT_RECHECK_MS = 250;

export class Pipeline {
  readonly publisher: Publisher;
  private readonly follows: Follows;

  constructor(
    private readonly deps: DepsOf<
      'blobs' | 'clock' | 'config' | 'log' | 'notifier' | 'releases' | 'leader' | 'metrics',
      'artifacts' | 'builds' | 'imports' | 'packageMetadata' | 'targets' | 'tasks'
    >,
    private readonly attest: Attestations,
    private readonly errata: ErrataService,
    private readonly stagesFor: (key: string) => Promise<Set<string>>,
  ) {
    this.publisher = this.createPublisher();
    this.follows = {
      'build.created': [
        async (e) => {
          await this.attest.source(e.build, e.sourceUrl, e.spec);
          this.statementsChanged(e.build.id);
        },
      ],
      'task.ended': [
        async (e) => {
          if (e.task.kind === 'repomd') {
            void this.publisher.tick();
            return;
          }
          await this.attest.taskEnded(e.task, e.buildState);
          this.statementsChanged(e.task.buildId);
        },
      ],
      'build.signed': [
        async (e) => {
          await this.recordMetadata(e.buildId);
          await this.landInBuildRepo(e.buildId);
        },
      ],
      'build.not-landed': [],
      'snapshot.published': [
        async (e) => {
          const since = e.release.approvedAt ?? e.release.createdAt;
          this.deps.metrics.publishSeconds.observe(Math.max(0, this.deps.clock.now() - since) / 1000);
        },
        (e) => this.attest.released(e.release, e.repo.name, e.snapshot),
        (e) => this.errata.published(e.repo, e.snapshot),
      ],
    };
  }

  /** Add a step after the table's own steps for an event. */
  also<K extends PipelineEvent['kind']>(kind: K, step: Step<K>): void {
    (this.follows[kind] as Step<K>[]).push(step);
  }

  /** Run what follows an event, in the table's order. */
  async emit(event: PipelineEvent): Promise<void> {
    const steps = this.follows[event.kind] as readonly ((e: PipelineEvent) => Promise<void>)[];
    for (const step of steps) {
      // What happened is already committed (a task ended, a snapshot went live): its follow-up must happen
      // too, so a database that is away for a moment (a failover) is waited for, for up to ~30 s.
      for (let attempt = 1, wait = 250; ; attempt++, wait = Math.min(wait * 2, 4_000)) {
        try {
          await step(event);
          break;
        } catch (err) {
          if (!isTransientDbError(err) || attempt >= 10) throw err;
          this.deps.log.warn(
            { component: 'pipeline', event: event.kind, err: (err as Error).message },
            'database away; trying again',
          );
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    }
  }

  /** The ledger stages recorded for a build (`source`, `build`, `sign`, `test`, `release`, `sbom`). */
  stagesRecorded(buildId: number): Promise<Set<string>> {
    return this.stagesFor(`build:${buildId}`);
  }

  /**
   * The server refuses to sign or test an artifact whose earlier stages are not in the ledger. A statement is
   * recorded right after its task completes, so a lease may arrive first: wait for it (woken when this
   * process records one, looking again every STATEMENT_RECHECK_MS for other processes' statements).
   */
  async waitForStatements(buildId: number, stages: readonly string[]): Promise<void> {
    const deadline = Date.now() + STATEMENT_WAIT_MS;
    for (;;) {
      const left = deadline - Date.now();
      // Listen before looking, so a statement recorded between the look and the wait still wakes us.
      const woken = this.deps.notifier.wait(topic(buildId), Math.max(0, Math.min(left, STATEMENT_RECHECK_MS)));
      const have = await this.stagesRecorded(buildId);
      const missing = stages.filter((s) => !have.has(s));
      if (missing.length === 0) return;
      if (left <= 0)
        throw new LenixError(
          'STATEMENT_MISSING',
          `build ${buildId} has no ${missing.join(', ')} statement in the ledger yet`,
        );
      await woken;
    }
  }

  /**
   * A signed build's packages get their repository metadata derived now, once, so that no publish has to read
   * them. A failure only costs time: the publisher derives what is missing.
   */
  private async recordMetadata(buildId: number): Promise<void> {
    const signed = (await this.deps.store.artifacts.listOfBuild(buildId)).filter((a) => a.kind === 'signed-rpm');
    await this.publisher
      .recordMetadata(signed)
      .catch((err: unknown) =>
        this.deps.log.warn({ component: 'pipeline', build: buildId, err }, 'repository metadata not derived yet'),
      );
  }

  /**
   * A signed build of a target goes into the target's build repository as its next snapshot, so the next
   * buildroot can install it (Koji's newRepo, but one release per build, in seconds). Its sign statement is
   * in the ledger already (the step before this one); the test gate does not apply to a buildroot.
   */
  async landInBuildRepo(buildId: number): Promise<void> {
    const { deps } = this;
    const build = await deps.store.builds.get(buildId);
    const target = build?.targetId ? await deps.store.targets.get(build.targetId) : null;
    if (!build || !target) return;
    const repo = await deps.releases.getRepoByName(target.buildRepo);
    if (!repo) {
      deps.log.warn({ component: 'pipeline', build: buildId, repo: target.buildRepo }, 'build repository missing');
      return;
    }
    try {
      const plan = await this.publisher.plan(repo, [buildId], { sameNevraReplaces: true });
      await deps.releases.createRelease(
        {
          repoId: repo.id,
          builds: [buildId],
          plan: { ...planRecord(plan), buildRepository: target.name } as unknown as Record<string, unknown>,
          overrideReason: null,
          createdBy: 'lenix',
          state: 'approved',
          approvedBy: `lenix (build repository of target ${target.name})`,
        },
        deps.clock.now(),
      );
      void this.publisher.tick();
    } catch (e) {
      // A conflict (the same NEVRA with other bytes is there already) leaves the build repository as it is.
      deps.log.warn(
        { component: 'pipeline', build: buildId, repo: repo.name, err: e },
        'not added to the build repository',
      );
    }
  }

  private statementsChanged(buildId: number): void {
    this.deps.notifier.emit(topic(buildId));
  }

  private createPublisher(): Publisher {
    const { deps } = this;
    return new Publisher({
      updateinfo: async (repo, packages) => {
        const { advisories, waiting } = await this.errata.forSnapshot(repo, packages);
        if (waiting.length > 0)
          deps.log.info(
            { component: 'errata', repo: repo.name, waiting },
            'approved advisories wait for their packages',
          );
        return {
          perArch: (arch) => this.errata.updateinfo(repo, arch, advisories),
          advisories: advisories.map((a) => a.id),
        };
      },
      published: (release, repo, snapshot) => this.emit({ kind: 'snapshot.published', release, repo, snapshot }),
      mayPublish: () => deps.leader.holds('publisher'),
      fence: () => deps.leader.fence('publisher'),
      failed: (code) => deps.metrics.errors.inc({ code }),
      store: deps.store,
      releases: deps.releases,
      blobs: deps.blobs,
      clock: deps.clock,
      log: deps.log,
      reposDir: path.join(deps.config.dataDir, 'repos'),
      mirrorKeepMs: deps.config.metalinkGraceMs,
      metadataSignatures: async (release) => {
        const task = (await deps.store.tasks.listOfKind('repomd'))
          .filter((t) => (t.subject as { releaseId?: number } | null)?.releaseId === release.id)
          .pop();
        if (!task) throw new LenixError('INTERNAL', `release ${release.id} has no metadata signing task`);
        if (task.state === 'failed' || task.state === 'cancelled')
          return { state: 'failed', reason: `${task.state}: ${task.reason ?? ''}` };
        if (task.state !== 'succeeded') return { state: 'waiting' };
        return { state: 'done', signatures: metadataSignaturesOf(task.result) };
      },
      requestMetadataSignature: async (release, keyFingerprint, files) => {
        // The signing task is filed under a build of the release (a republish: a build already in the repository;
        // a release of imported packages only: the newest build, as tasks belong to builds).
        const repo = await deps.releases.getRepo(release.repoId);
        const current = repo?.currentSnapshotId ? await deps.releases.getSnapshot(repo.currentSnapshotId) : null;
        const buildId =
          release.builds[0] ??
          current?.packages.find((p) => p.buildId > 0)?.buildId ??
          (await deps.store.builds.list({ limit: 1 }))[0]?.id;
        if (buildId === undefined)
          throw new LenixError(
            'RELEASE_BLOCKED',
            'the metadata-signing task of a publish is filed under a build, and this Lenix has none yet: build a package first',
          );
        const id = await deps.store.tasks.enqueue(
          {
            buildId,
            role: 'sign',
            kind: 'repomd',
            subject: { releaseId: release.id, keyFingerprint, files },
            maxAttempts: deps.config.maxAttempts,
          },
          deps.clock.now(),
        );
        deps.notifier.emit('queue');
        return id;
      },
    });
  }
}

const topic = (buildId: number) => `statements:build:${buildId}`;
