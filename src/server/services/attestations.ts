import { createHash } from 'node:crypto';
import { parseSha256 } from '../../core/ids.js';
import { MANIFEST_THRESHOLD, buildManifest, type Manifest } from '../../attest/manifest.js';
import {
  importStatement,
  buildStatement,
  releaseStatement,
  signStatement,
  sourceStatement,
  testStatement,
} from '../../attest/statements.js';
import type { BuildRecord, ImportRecord, ReleaseRecord, SnapshotRecord, TaskRecord } from '../../store/records.js';
import type { DepsOf, StatementSink } from '../context.js';
import { publicSourceUrl } from '../../core/source-url.js';
import { buildrootOf, testStagesWithArches } from '../../core/protocol.js';
import { headerKey, type HeaderDigests } from '../../core/header-digests.js';
import { headerDigests, readRpmFileHeader } from '../../rpm/header.js';

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const headerKeys = (headers: ReadonlyMap<string, HeaderDigests>) =>
  [...headers.values()].map((h) => headerKey(h.sha256));

/**
 * Turns pipeline events into ledger statements (attest/statements.ts), with the subject keys look-ups use:
 * `build:ID`, `commit:SHA` and `sha256:HEX` for every artifact the statement names.
 */
export class Attestations {
  constructor(
    private readonly deps: DepsOf<
      'blobs' | 'clock' | 'log',
      'agents' | 'artifacts' | 'builds' | 'headers' | 'logs' | 'sources' | 'tasks'
    >,
    private readonly sink: StatementSink,
    private readonly stages: (key: string) => Promise<Set<string>>,
  ) {}

  /**
   * After a crash between a stage's completion and its statement (the store commits first, then the ledger
   * appends), record what is missing, so that the next stage is not refused for ever. Run at start-up,
   * before the server listens. A crash leaves the builds that were in flight without a statement, so only the
   * newest `recent` builds are looked at: start-up does not slow down with history (nor re-read every
   * build that predates the ledger). `spec` reads a build's spec file and source URL from the git mirror.
   */
  async repair(
    spec: (build: BuildRecord) => Promise<{ url: string; text: string }>,
    recent = 500,
    /**
     * Leave a stage alone whose task ended this recently: the normal path may be recording its statement right
     * now (0 at start-up, when nothing else runs).
     */
    quietMs = 0,
  ): Promise<number> {
    const settled = this.deps.clock.now() - quietMs;
    let repaired = 0;
    let seen = 0;
    for (let before: number | undefined; seen < recent; ) {
      const builds = await this.deps.store.builds.list({
        limit: Math.min(500, recent - seen),
        ...(before !== undefined ? { beforeId: before } : {}),
      });
      if (builds.length === 0) return repaired;
      seen += builds.length;
      before = builds[builds.length - 1]!.id;
      for (const build of builds) {
        const have = await this.stages(`build:${build.id}`);
        if (['source', 'build', 'sign', 'test'].every((s) => have.has(s))) continue;
        const tasks = await this.deps.store.tasks.listOfBuild(build.id);
        try {
          /** Record `stage` unless it is there, or the moment it became due (`at`) is too recent. */
          const missing = async (stage: string, f: () => Promise<void>, at: number | null = build.createdAt) => {
            if (have.has(stage) || (at ?? 0) > settled) return;
            await f();
            repaired++;
            this.deps.log.warn(
              { component: 'ledger', build: build.id, stage },
              'recorded a statement missing after a crash',
            );
          };
          await missing('source', async () => {
            const s = await spec(build);
            await this.source(build, s.url, s.text);
          });
          const binaries = tasks.filter((t) => t.kind === 'binary');
          if (binaries.length > 0 && binaries.every((t) => t.state === 'succeeded'))
            await missing(
              'build',
              () => this.taskEnded(binaries[binaries.length - 1]!, 'succeeded'),
              Math.max(...binaries.map((t) => t.finishedAt ?? 0)),
            );
          const sign = tasks.filter((t) => t.kind === 'sign' && t.state === 'succeeded').pop();
          if (sign) await missing('sign', () => this.taskEnded(sign, build.state), sign.finishedAt);
          const test = tasks
            .filter((t) => t.kind === 'test' && (t.state === 'succeeded' || t.state === 'failed'))
            .pop();
          if (test) await missing('test', () => this.taskEnded(test, build.state), test.finishedAt);
        } catch (err) {
          this.deps.log.error(
            { component: 'ledger', build: build.id, err: (err as Error).message },
            'could not record a missing statement',
          );
        }
      }
    }
    return repaired;
  }

  async source(build: BuildRecord, url: string, specText: string): Promise<void> {
    await this.sink.record(
      'source',
      sourceStatement({
        repository: url,
        ref: build.ref,
        commit: build.commit.sha,
        tree: build.commit.tree,
        specPath: build.specPath,
        specSha256: sha256(specText),
        buildId: build.id,
      }),
      [`build:${build.id}`, `commit:${build.commit.sha}`],
    );
  }

  /** After a task ends: the build statement when the build succeeds, the sign and test statements. */
  async taskEnded(task: TaskRecord, buildState: string): Promise<void> {
    // Most completions start no statement (SRPM tasks, failures, requeues): return before reading anything.
    const relevant =
      (task.kind === 'binary' && buildState === 'succeeded') ||
      (task.kind === 'sign' && task.state === 'succeeded') ||
      (task.kind === 'test' && (task.state === 'succeeded' || task.state === 'failed'));
    if (!relevant) return;
    const build = await this.deps.store.builds.get(task.buildId);
    if (!build) return;
    const source = await this.deps.store.sources.get(build.sourceId);
    const tasks = await this.deps.store.tasks.listOfBuild(build.id);
    const artifacts = await this.deps.store.artifacts.listOfBuild(build.id);
    if (task.kind === 'binary' && buildState === 'succeeded') {
      const pipeline = tasks.filter((t) => t.kind === 'srpm' || t.kind === 'binary');
      const agents = await this.deps.store.agents.list();
      const logs = [];
      for (const t of pipeline)
        logs.push({ name: `task-${t.id}.log`, sha256: sha256(await this.deps.store.logs.read(t.id, 0)) });
      const built = artifacts.filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
      await this.sink.record(
        'build',
        buildStatement({
          buildId: build.id,
          repository: source ? publicSourceUrl(source.name, source.url) : build.sourceName,
          ref: build.ref,
          commit: build.commit.sha,
          arches: build.arches,
          builders: [
            ...new Set(pipeline.map((t) => agents.find((a) => a.id === t.agentId)?.name ?? `agent-${t.agentId}`)),
          ],
          startedOn: build.startedAt === null ? null : new Date(build.startedAt).toISOString(),
          finishedOn: build.finishedAt === null ? null : new Date(build.finishedAt).toISOString(),
          artifacts: built.map((a) => ({ name: a.name, sha256: a.sha256 })),
          buildroots: pipeline.map((t) => ({ task: t.id, arch: t.arch, buildroot: buildrootOf(t.result) })),
          installed: pipeline.flatMap((t) => buildrootOf(t.result)?.installed ?? []),
          logs,
        }),
        [`build:${build.id}`, `commit:${build.commit.sha}`, ...built.map((a) => `sha256:${a.sha256}`)],
      );
    }
    if (task.kind === 'sign' && task.state === 'succeeded') {
      const signed = artifacts.filter((a) => a.taskId === task.id && a.signedBy);
      const headers = await this.headerDigests(signed.map((s) => s.sha256));
      const pairs = signed.map((s) => ({
        name: s.name,
        signed: s.sha256,
        unsigned: artifacts.find((a) => a.id === s.parentId)?.sha256 ?? '',
        header: headers.get(s.sha256),
      }));
      await this.sink.record('sign', signStatement({ buildId: build.id, key: signed[0]?.signedBy ?? '', pairs }), [
        `build:${build.id}`,
        ...pairs.flatMap((p) => [`sha256:${p.signed}`, `sha256:${p.unsigned}`]),
        ...headerKeys(headers),
      ]);
    }
    if (task.kind === 'test' && (task.state === 'succeeded' || task.state === 'failed')) {
      const signed = artifacts.filter((a) => a.kind === 'signed-rpm');
      const stages = testStagesWithArches(task.result).map((s) => ({
        name: s.name,
        outcome: s.outcome,
        detail: s.detail,
      }));
      const agent = task.agentId === null ? null : await this.deps.store.agents.get(task.agentId);
      await this.sink.record(
        'test',
        testStatement({
          buildId: build.id,
          passed: task.state === 'succeeded',
          packages: signed.map((a) => ({ name: a.name, sha256: a.sha256 })),
          stages,
          logSha256: sha256(await this.deps.store.logs.read(task.id, 0)),
          tester: agent?.name ?? 'unknown',
        }),
        [`build:${build.id}`, ...signed.map((a) => `sha256:${a.sha256}`)],
      );
    }
  }

  /** An imported package: the import statement names its digest and what its signature was checked against. */
  async imported(i: ImportRecord): Promise<void> {
    const headers = await this.headerDigests([i.sha256]);
    await this.sink.record(
      'import',
      importStatement({
        importId: i.id,
        name: i.name,
        nevra: i.nevra,
        sha256: i.sha256,
        key: i.keyFingerprint,
        repository: i.repo,
        importedBy: i.importedBy,
        header: headers.get(i.sha256),
      }),
      [`import:${i.id}`, `sha256:${i.sha256}`, ...headerKeys(headers)],
    );
  }

  /**
   * The header digests of package files: recorded when they were signed or imported; for files recorded before
   * that (or a crash between), read once from the stored file and recorded. A file whose bytes are gone has none.
   */
  private async headerDigests(sha256s: readonly string[]): Promise<Map<string, HeaderDigests>> {
    const known = await this.deps.store.headers.of(sha256s);
    const found: { sha256: string; digests: HeaderDigests }[] = [];
    for (const sha of new Set(sha256s)) {
      if (known.has(sha)) continue;
      const digests = await this.deps.blobs
        .withLocalFile(parseSha256(sha), async (f) => headerDigests(await readRpmFileHeader(f)))
        .catch(() => null);
      if (digests) found.push({ sha256: sha, digests });
    }
    if (found.length > 0) await this.deps.store.headers.put(found);
    for (const f of found) known.set(f.sha256, f.digests);
    return known;
  }

  async released(release: ReleaseRecord, repoName: string, snap: SnapshotRecord): Promise<void> {
    // A publish resumed after a crash calls this again: one statement per release.
    if ((await this.stages(`release:${release.id}`)).has('release')) return;
    // A release small enough to name its packages names their header digests too (a manifest names files).
    const small = snap.packages.length <= MANIFEST_THRESHOLD;
    const headers = small ? await this.headerDigests(snap.packages.map((p) => p.sha256)) : new Map();
    const packages = snap.packages.map((p) => ({
      name: p.name,
      sha256: p.sha256,
      arch: p.arch,
      header: headers.get(p.sha256),
    }));
    let manifest: Manifest | undefined;
    if (packages.length > MANIFEST_THRESHOLD) {
      // The manifest is content-addressed in the blob store before the statement naming it is logged.
      manifest = buildManifest(packages);
      await this.deps.blobs.put(manifest.bytes, { expected: parseSha256(manifest.sha256) });
    }
    await this.sink.record(
      'release',
      releaseStatement(
        {
          repository: repoName,
          releaseId: release.id,
          snapshotId: snap.id,
          repomd: snap.repomd ?? {},
          packages,
          overrideReason: release.overrideReason,
        },
        manifest,
      ),
      [
        `release:${release.id}`,
        ...release.builds.map((b) => `build:${b}`),
        ...snap.packages.map((p) => `sha256:${p.sha256}`),
        ...Object.values(snap.repomd ?? {}).map((s) => `sha256:${s}`),
        ...headerKeys(headers),
      ],
    );
  }
}
