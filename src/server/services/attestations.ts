import { createHash } from 'node:crypto';
import { buildStatement, releaseStatement, signStatement, sourceStatement, testStatement } from '../../attest/statements.js';
import type { BuildRecord, ReleaseRecord, SnapshotRecord, TaskRecord } from '../../store/records.js';
import type { ServerDeps, StatementSink } from '../context.js';

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/**
 * Turns pipeline events into ledger statements (attest/statements.ts), with the subject keys look-ups use:
 * `build:ID`, `commit:SHA` and `sha256:HEX` for every artifact the statement names.
 */
export class Attestations {
  constructor(
    private readonly deps: ServerDeps,
    private readonly sink: StatementSink,
  ) {}

  async source(build: BuildRecord, url: string, specText: string): Promise<void> {
    await this.sink.record(
      'source',
      sourceStatement({ repository: url, ref: build.ref, commit: build.commit.sha, tree: build.commit.tree, specPath: build.specPath, specSha256: sha256(specText), buildId: build.id }),
      [`build:${build.id}`, `commit:${build.commit.sha}`],
    );
  }

  /** After a task ends: the build statement when the build succeeds, the sign and test statements. */
  async taskEnded(task: TaskRecord, buildState: string): Promise<void> {
    // Most completions start no statement (SRPM tasks, failures, requeues): return before reading anything.
    const relevant =
      (task.kind === 'binary' && buildState === 'succeeded') || (task.kind === 'sign' && task.state === 'succeeded') || (task.kind === 'test' && (task.state === 'succeeded' || task.state === 'failed'));
    if (!relevant) return;
    const build = await this.deps.store.getBuild(task.buildId);
    if (!build) return;
    const source = await this.deps.store.getSource(build.sourceId);
    const tasks = await this.deps.store.listTasks(build.id);
    const artifacts = await this.deps.store.listArtifacts(build.id);
    if (task.kind === 'binary' && buildState === 'succeeded') {
      const pipeline = tasks.filter((t) => t.kind === 'srpm' || t.kind === 'binary');
      const agents = await this.deps.store.listAgents();
      const logs = [];
      for (const t of pipeline) logs.push({ name: `task-${t.id}.log`, sha256: sha256(await this.deps.store.readLog(t.id, 0)) });
      const built = artifacts.filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
      await this.sink.record(
        'build',
        buildStatement({
          buildId: build.id,
          repository: source?.url ?? build.sourceName,
          ref: build.ref,
          commit: build.commit.sha,
          arches: build.arches,
          builders: [...new Set(pipeline.map((t) => agents.find((a) => a.id === t.agentId)?.name ?? `agent-${t.agentId}`))],
          startedOn: build.startedAt === null ? null : new Date(build.startedAt).toISOString(),
          finishedOn: build.finishedAt === null ? null : new Date(build.finishedAt).toISOString(),
          artifacts: built.map((a) => ({ name: a.name, sha256: a.sha256 })),
          buildroots: pipeline.map((t) => ({ task: t.id, arch: t.arch, buildroot: t.result?.['buildroot'] ?? null })),
          logs,
        }),
        [`build:${build.id}`, `commit:${build.commit.sha}`, ...built.map((a) => `sha256:${a.sha256}`)],
      );
    }
    if (task.kind === 'sign' && task.state === 'succeeded') {
      const signed = artifacts.filter((a) => a.taskId === task.id && a.signedBy);
      const pairs = signed.map((s) => ({ name: s.name, signed: s.sha256, unsigned: artifacts.find((a) => a.id === s.parentId)?.sha256 ?? '' }));
      await this.sink.record('sign', signStatement({ buildId: build.id, key: signed[0]?.signedBy ?? '', pairs }), [
        `build:${build.id}`,
        ...pairs.flatMap((p) => [`sha256:${p.signed}`, `sha256:${p.unsigned}`]),
      ]);
    }
    if (task.kind === 'test' && (task.state === 'succeeded' || task.state === 'failed')) {
      const signed = artifacts.filter((a) => a.kind === 'signed-rpm');
      const stages = ((task.result?.['stages'] ?? []) as { name: string; outcome: string; detail: string }[]).map((s) => ({ name: s.name, outcome: s.outcome, detail: s.detail }));
      const agent = task.agentId === null ? null : await this.deps.store.getAgent(task.agentId);
      await this.sink.record(
        'test',
        testStatement({ buildId: build.id, passed: task.state === 'succeeded', packages: signed.map((a) => ({ name: a.name, sha256: a.sha256 })), stages, logSha256: sha256(await this.deps.store.readLog(task.id, 0)), tester: agent?.name ?? 'unknown' }),
        [`build:${build.id}`, ...signed.map((a) => `sha256:${a.sha256}`)],
      );
    }
  }

  async released(release: ReleaseRecord, repoName: string, snap: SnapshotRecord): Promise<void> {
    await this.sink.record(
      'release',
      releaseStatement({ repository: repoName, releaseId: release.id, snapshotId: snap.id, repomd: snap.repomd ?? {}, packages: snap.packages.map((p) => ({ name: p.name, sha256: p.sha256, arch: p.arch })), overrideReason: release.overrideReason }),
      [...release.builds.map((b) => `build:${b}`), ...snap.packages.map((p) => `sha256:${p.sha256}`), ...Object.values(snap.repomd ?? {}).map((s) => `sha256:${s}`)],
    );
  }
}
