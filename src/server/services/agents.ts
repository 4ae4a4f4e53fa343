import type { Readable } from 'node:stream';
import { refuseUpload } from '../../core/built-package.js';
import { LenixError } from '../../core/errors.js';
import { buildrootOf, parseTaskResult, type PackageRef, type TaskPayload } from '../../core/protocol.js';
import { bothSignaturesOk, rpmCheckSignatures } from '../../rpm/tools.js';
import { parsePlainName, parseSha256 } from '../../core/ids.js';
import { headerDigests, packageInfo, readRpmFileHeader } from '../../rpm/header.js';
import { planFanOut } from '../../scheduler/fan-out.js';
import type { AgentRole, Outcome } from '../../scheduler/task-state.js';
import {
  isPackageKind,
  isSourceKind,
  type AgentRecord,
  type ArtifactKind,
  type ArtifactRecord,
  type TaskRecord,
} from '../../store/records.js';
import type { FollowUp } from '../../scheduler/task-state.js';
import type { CompleteResult, LeaseGrant, NextGrant } from '../../store/store.js';
import type { Caller } from '../auth.js';
import type { DepsOf } from '../context.js';
import { Recent } from '../recent.js';
import type { Pipeline } from './pipeline.js';
import { checkInstalled, targetPayload, testRepos } from './root-repos.js';

/** A lease granted to an agent, with the payload it is sent. */
export interface Leased {
  readonly grant: LeaseGrant;
  readonly payload: TaskPayload;
}

/** How long an agent's record read for a lease is used again before it is read anew. */
const AGENT_TTL_MS = 2000;

/** The server side of the agent protocol (architecture page, "Agent protocol"). */
export class AgentService {
  /** When each agent was last marked seen; "last seen" is written at most every few seconds per agent. */
  private readonly seen = new Map<number, number>();
  /**
   * Agent records by id, read on every lease, kept for AGENT_TTL_MS as token look-ups are (auth.ts). What a
   * lease reads of one never changes but its arches, which a re-registration on this server updates here at
   * once and on another server within the ttl.
   */
  private readonly known = new Recent<number, AgentRecord>(AGENT_TTL_MS);
  constructor(
    private readonly deps: DepsOf<
      'blobs' | 'clock' | 'config' | 'log' | 'notifier' | 'releases' | 'metrics',
      'agents' | 'artifacts' | 'builds' | 'headers' | 'logs' | 'targets' | 'tasks'
    >,
    private readonly pipeline: Pick<Pipeline, 'emit' | 'waitForStatements'>,
  ) {}

  private async touch(agentId: number): Promise<void> {
    const now = this.deps.clock.now();
    if (now - (this.seen.get(agentId) ?? 0) < 5000) return;
    this.seen.set(agentId, now);
    await this.deps.store.agents.touch(agentId, now);
  }

  async register(
    caller: Caller,
    a: { name: string; role: AgentRole; arches: string[]; capabilities: Record<string, unknown> },
  ): Promise<AgentRecord> {
    const now = this.deps.clock.now();
    const agent = await this.deps.store.agents.register({ ...a, tokenId: caller.tokenId }, now);
    this.known.set(agent.id, agent, now);
    return agent;
  }

  async agentFor(caller: Caller, agentId: number): Promise<AgentRecord> {
    const agent = await this.known.get(agentId, this.deps.clock.now(), async () => {
      const read = await this.deps.store.agents.get(agentId);
      if (!read) throw new LenixError('AGENT_NOT_FOUND', `agent ${agentId} is not registered`);
      return read;
    });
    if (agent.tokenId !== caller.tokenId)
      throw new LenixError('FORBIDDEN', `agent ${agentId} belongs to another token`);
    return agent;
  }

  /** Lease with long-poll: wait up to `waitMs` for work, waking when tasks are queued. */
  async lease(agent: AgentRecord, waitMs: number, signal: AbortSignal): Promise<Leased | null> {
    const deadline = this.deps.clock.now() + Math.min(waitMs, this.deps.config.longPollMaxMs);
    await this.touch(agent.id);
    // Expired leases are requeued by the server's reaper (every second), which also wakes waiters here.
    for (;;) {
      const t0 = performance.now();
      const grant = await this.deps.store.tasks.lease(agent, this.deps.config.leaseMs, this.deps.clock.now());
      this.deps.metrics.leaseSeconds.observe((performance.now() - t0) / 1000);
      if (grant) return this.withPayload(grant);
      const left = deadline - this.deps.clock.now();
      if (left <= 0 || signal.aborted) return null;
      await this.deps.notifier.wait('queue', Math.min(left, 1000), signal);
    }
  }

  /**
   * A granted lease with what its agent needs. When an earlier stage's statement is not in the ledger yet (its
   * server is recording it, or a repair will), the task goes back to the queue without costing an attempt, and
   * the agent is told to ask again (null).
   */
  private async withPayload(grant: LeaseGrant): Promise<Leased | null> {
    try {
      return { grant, payload: await this.payload(grant) };
    } catch (err) {
      if (!(err instanceof LenixError && err.code === 'STATEMENT_MISSING')) throw err;
      await this.deps.store.tasks.giveBack(grant.lease.id, grant.lease.fencingToken, this.deps.clock.now());
      this.deps.notifier.emit('queue');
      return null;
    }
  }

  async reap(): Promise<void> {
    const changed = await this.deps.store.tasks.reapExpired(this.deps.clock.now());
    if (changed.length > 0) {
      this.deps.notifier.emit('queue');
      for (const t of changed) this.deps.notifier.emit(`task:${t.id}`);
      this.deps.log.warn({ component: 'scheduler', tasks: changed.map((t) => t.id) }, 'leases expired');
    }
  }

  private async payload({ task, build }: LeaseGrant): Promise<TaskPayload> {
    // Only binary, sign and test tasks need the build's artifacts; SRPM leases (the bulk) skip the query.
    const artifacts =
      task.kind === 'srpm' || task.kind === 'repomd' ? [] : await this.deps.store.artifacts.listOfBuild(build.id);
    const ref = (a: ArtifactRecord): PackageRef => ({
      sha256: a.sha256,
      name: a.name,
      url: `/api/v1/artifacts/${a.sha256}`,
      kind: isSourceKind(a.kind) ? 'srpm' : 'rpm',
      arch: a.arch ?? 'noarch',
    });
    switch (task.kind) {
      case 'srpm':
      case 'binary': {
        let srpm = null;
        if (task.kind === 'binary') {
          const a = artifacts.find((x) => x.kind === 'srpm');
          if (!a) throw new LenixError('ARTIFACT_NOT_FOUND', `build ${build.id} has no SRPM`);
          srpm = { sha256: a.sha256, name: a.name, url: `/api/v1/artifacts/${a.sha256}` };
        }
        return {
          taskId: task.id,
          buildId: build.id,
          kind: task.kind,
          arch: task.arch,
          source: { name: build.sourceName },
          commit: { sha: build.commit.sha, tree: build.commit.tree, committedAt: build.commit.committedAt },
          specPath: build.specPath,
          packageName: build.packageName,
          archiveUrl: `/api/v1/builds/${build.id}/source.tar`,
          srpm,
          target: await targetPayload({ releases: this.deps.releases, targets: this.deps.store.targets }, build, task),
        };
      }
      case 'sign': {
        await this.pipeline.waitForStatements(build.id, ['source', 'build']);
        const fpr = await this.deps.releases.getSetting('signing_key');
        if (!fpr) throw new LenixError('NO_SIGNING_KEY', 'no signing key is configured');
        return {
          kind: 'sign',
          taskId: task.id,
          buildId: build.id,
          keyFingerprint: fpr,
          packages: artifacts.filter((a) => a.kind === 'srpm' || a.kind === 'rpm').map(ref),
        };
      }
      case 'repomd': {
        const subject = task.subject as {
          releaseId: number;
          keyFingerprint: string;
          files: { path: string; sha256: string; contentBase64: string }[];
        } | null;
        if (!subject) throw new LenixError('INTERNAL', `repomd task ${task.id} has no subject`);
        return {
          kind: 'repomd',
          taskId: task.id,
          releaseId: subject.releaseId,
          keyFingerprint: subject.keyFingerprint,
          files: subject.files,
        };
      }
      case 'test': {
        await this.pipeline.waitForStatements(build.id, ['source', 'build', 'sign']);
        const signed = artifacts.filter((a) => a.kind === 'signed-rpm');
        const fpr = signed[0]?.signedBy ?? (await this.deps.releases.getSetting('signing_key')) ?? '';
        const repos = await testRepos({ releases: this.deps.releases, targets: this.deps.store.targets }, build);
        return {
          kind: 'test',
          taskId: task.id,
          buildId: build.id,
          source: { name: build.sourceName },
          keyFingerprint: fpr,
          publicKeyUrl: `/keys/${fpr}.asc`,
          archiveUrl: `/api/v1/builds/${build.id}/source.tar`,
          packages: signed.map(ref),
          ...repos,
        };
      }
    }
  }

  async heartbeat(caller: Caller, leaseId: number, fencingToken: number) {
    const r = await this.deps.store.tasks.heartbeat(
      leaseId,
      fencingToken,
      caller.tokenId,
      this.deps.config.leaseMs,
      this.deps.clock.now(),
    );
    await this.touch(r.agentId);
    return { expiresAt: r.expiresAt, cancelled: r.cancelled };
  }

  async appendLog(
    caller: Caller,
    leaseId: number,
    fencingToken: number,
    offset: number,
    data: Uint8Array,
  ): Promise<number> {
    const { task } = await this.deps.store.tasks.checkLease(
      leaseId,
      fencingToken,
      caller.tokenId,
      this.deps.clock.now(),
    );
    // Agents cut a flooding build's log themselves; this bounds what a misbehaving agent can make us store.
    if (offset + data.length > this.deps.config.maxLogBytes)
      throw new LenixError('LOG_TOO_LARGE', `a task's log is limited to ${this.deps.config.maxLogBytes} bytes`);
    const size = await this.deps.store.logs.append(task.id, offset, data);
    this.deps.notifier.emit(`log:${task.id}`);
    return size;
  }

  /**
   * Store an uploaded file: the bytes go to the blob store only if they hash to the declared digest, RPMs
   * must parse as RPMs, and the record is written only while the lease is still current.
   */
  async upload(
    caller: Caller,
    leaseId: number,
    q: { fencingToken: number; name: string; sha256: string; kind: ArtifactKind; parent?: string | undefined },
    body: Readable,
  ): Promise<ArtifactRecord> {
    const name = parsePlainName(q.name, 'artifact name');
    const expected = parseSha256(q.sha256);
    const pkg = isPackageKind(q.kind);
    if ((pkg && !name.endsWith('.rpm')) || (pkg && isSourceKind(q.kind) !== name.endsWith('.src.rpm'))) {
      throw new LenixError('BAD_REQUEST', `artifact kind ${q.kind} does not fit the name ${name}`);
    }
    const { lease, task } = await this.deps.store.tasks.checkLease(
      leaseId,
      q.fencingToken,
      caller.tokenId,
      this.deps.clock.now(),
    );
    const signed = q.kind === 'signed-rpm' || q.kind === 'signed-srpm';
    if (signed !== (task.kind === 'sign'))
      throw new LenixError('BAD_REQUEST', `a ${task.kind} task cannot upload ${q.kind} artifacts`);
    const { sha256, size } = await this.deps.blobs.put(body, { expected, maxBytes: this.deps.config.maxUploadBytes });
    let nevra: string | null = null;
    let arch: string | null = null;
    let parentId: number | null = null;
    let signedBy: string | null = null;
    if (pkg) {
      // The stored upload, read where it lies: its header, and for a signed package its signatures.
      await this.deps.blobs.withLocalFile(sha256, async (file) => {
        const header = await readRpmFileHeader(file);
        const info = packageInfo(header);
        if (info.isSource !== isSourceKind(q.kind))
          throw new LenixError('BAD_REQUEST', `${name} is ${info.isSource ? 'a source' : 'a binary'} package`);
        arch = info.arch;
        const epoch = info.epoch ? `${info.epoch}:` : '';
        nevra = `${info.name}-${epoch}${info.version}-${info.release}.${info.arch}`;
        const built = await this.deps.store.artifacts.listOfBuild(task.buildId);
        const srpm = built.find((a) => a.kind === 'srpm');
        if (q.kind === 'rpm') parentId = srpm?.id ?? null;
        if (!signed) {
          // Only what this build makes: its own SRPM, and packages its spec declares, built from that SRPM for
          // this task's arch, under their NEVRA names (an agent's word about what it built is not enough).
          const build = await this.deps.store.builds.get(task.buildId);
          if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${task.buildId} does not exist`);
          const why = refuseUpload({ fileName: name, ...info }, task, {
            packageName: build.packageName,
            packageEvr: build.packageEvr,
            declaredPackages: build.declaredPackages,
            srpmName: srpm?.name ?? null,
          });
          if (why !== null) throw new LenixError('PACKAGE_MISMATCH', why);
        }
        if (signed) {
          // A signed package must be the signed form of one of this build's packages, and verify against the
          // key the server knows (header v4 and header+payload v3 signatures), before it is recorded.
          const parent = built.find((a) => a.sha256 === q.parent && (a.kind === 'rpm' || a.kind === 'srpm'));
          if (!parent)
            throw new LenixError('BAD_REQUEST', 'parent must be the sha256 of an unsigned package of this build');
          if (parent.nevra !== nevra || parent.name !== name)
            throw new LenixError(
              'PACKAGE_MISMATCH',
              `signed package is ${name} (${nevra}), its parent ${parent.name} (${parent.nevra})`,
            );
          const fpr = await this.deps.releases.getSetting('signing_key');
          const key = fpr ? await this.deps.releases.getKey(fpr) : null;
          if (!key) throw new LenixError('NO_SIGNING_KEY', 'no signing key is configured');
          const check = (await rpmCheckSignatures(key.publicKey, [file])).get(file) ?? '';
          if (!bothSignaturesOk(check))
            throw new LenixError('SIGNATURE_INVALID', `${name} does not carry valid v4 and v3 signatures by ${fpr}`);
          parentId = parent.id;
          signedBy = key.fingerprint;
          // What an rpm database keeps of it: its statements name these, so an installed copy is found.
          await this.deps.store.headers.put([{ sha256, digests: headerDigests(header) }]);
        }
      });
    }
    return this.deps.store.artifacts.add(
      {
        buildId: task.buildId,
        taskId: task.id,
        leaseId: lease.id,
        sha256,
        size,
        name,
        kind: q.kind,
        arch,
        nevra,
        parentId,
        signedBy,
      },
      q.fencingToken,
      this.deps.clock.now(),
    );
  }

  /**
   * End a lease. With `next`, the agent's next task is leased in the same call of the database (never one of
   * the completed task's build: store/queue/complete.ts); the completion stands whatever happens to that
   * lease, which then answers no task (the agent asks POST /agent/lease, which says why).
   */
  async complete(
    caller: Caller,
    leaseId: number,
    fencingToken: number,
    outcome: Outcome,
    report: Record<string, unknown> | null,
    next?: AgentRecord,
  ): Promise<CompleteResult & { readonly next: Leased | null }> {
    const now = this.deps.clock.now();
    // Only a success needs the task first (to plan its follow-up); store.complete re-checks the lease in its
    // transaction and parses the report by the task's kind before storing it.
    const task =
      outcome.kind === 'success'
        ? (await this.deps.store.tasks.checkLease(leaseId, fencingToken, caller.tokenId, now)).task
        : null;
    if (task?.kind === 'binary') await this.checkBuildroot(task, report);
    const followUp: FollowUp = task ? await this.followUp(task, leaseId) : { kind: 'none' };
    const tasks = this.deps.store.tasks;
    const r = next
      ? await tasks.completeAndLease(
          { agent: next, leaseMs: this.deps.config.leaseMs },
          leaseId,
          fencingToken,
          caller.tokenId,
          outcome,
          report,
          followUp,
          now,
        )
      : {
          ...(await tasks.complete(leaseId, fencingToken, caller.tokenId, outcome, report, followUp, now)),
          next: null,
        };
    // A stage is complete once its statement is in the ledger: the pipeline records it before the next
    // stage's agents are woken and before we answer.
    await this.pipeline.emit({ kind: 'task.ended', task: r.task, buildState: r.buildState, batchId: r.batchId });
    if (r.queuedNew > 0 || r.task.state === 'queued') this.deps.notifier.emit('queue');
    this.deps.notifier.emit(`task:${r.task.id}`);
    this.deps.notifier.emit(`log:${r.task.id}`);
    // What a signed build brings besides its test (its packages' metadata, its place in the build repository)
    // follows once the tester is woken: the test needs neither (was ~0.1 s between a signature and its test).
    if (r.task.kind === 'sign' && r.task.state === 'succeeded')
      await this.pipeline.emit({ kind: 'build.signed', buildId: r.task.buildId });
    this.deps.log.info(
      { component: 'scheduler', task: r.task.id, build: r.task.buildId, state: r.task.state, buildState: r.buildState },
      'task completed',
    );
    return { ...r, next: next && r.next ? await this.nextOf(next, r.next) : null };
  }

  /** The next task a completion leased, with its payload; none if leasing it failed (logged). */
  private async nextOf(agent: AgentRecord, next: NextGrant): Promise<Leased | null> {
    try {
      await this.touch(agent.id);
      if (next.error !== null) throw new Error(next.error);
      return next.grant ? await this.withPayload(next.grant) : null;
    } catch (err) {
      this.deps.log.warn(
        { component: 'scheduler', agent: agent.id, err: (err as Error).message },
        'no next task with the completion',
      );
      return null;
    }
  }

  /** A binary build of a target: its buildroot record's packages must be in the target's snapshots. */
  private async checkBuildroot(task: TaskRecord, report: Record<string, unknown> | null): Promise<void> {
    const installed = buildrootOf(parseTaskResult('binary', report))?.installed ?? [];
    const build = installed.length > 0 ? await this.deps.store.builds.get(task.buildId) : null;
    const target = build?.targetId ? await this.deps.store.targets.get(build.targetId) : null;
    await checkInstalled(
      this.deps.releases,
      target ? [target.buildRepo, ...target.fromRepos] : [],
      installed,
      target?.externalRepos.map((e) => e.url) ?? [],
    );
  }

  /** After a successful SRPM task: read the SRPM's header and fan out one binary task per allowed arch. */
  private async followUp(task: TaskRecord, leaseId: number): Promise<FollowUp> {
    const uploaded = await this.deps.store.artifacts.listOfLease(leaseId);
    if (task.kind === 'sign') {
      const unsigned = (await this.deps.store.artifacts.listOfBuild(task.buildId)).filter(
        (a) => a.kind === 'srpm' || a.kind === 'rpm',
      );
      const missing = unsigned.filter((u) => !uploaded.some((s) => s.parentId === u.id));
      return missing.length === 0
        ? { kind: 'none' }
        : {
            kind: 'fail-build',
            code: 'UNSIGNED_PACKAGES',
            reason: `not signed: ${missing.map((m) => m.name).join(', ')}`,
          };
    }
    if (task.kind === 'repomd' || task.kind === 'test') return { kind: 'none' };
    if (task.kind === 'binary') {
      return uploaded.some((a) => a.kind === 'rpm')
        ? { kind: 'none' }
        : { kind: 'fail-build', code: 'NO_PACKAGES', reason: 'the binary task uploaded no RPM' };
    }
    const srpm = uploaded.find((a) => a.kind === 'srpm');
    if (!srpm) return { kind: 'fail-build', code: 'SRPM_MISSING', reason: 'the SRPM task uploaded no source package' };
    const build = await this.deps.store.builds.get(task.buildId);
    const info = packageInfo(await this.deps.blobs.withLocalFile(parseSha256(srpm.sha256), readRpmFileHeader));
    const plan = planFanOut(info, build?.arches ?? this.deps.config.arches);
    if (plan.kind === 'excluded') return { kind: 'fail-build', code: 'ARCH_EXCLUDED', reason: plan.reason };
    return { kind: 'fan-out', role: 'build', taskKind: 'binary', arches: plan.arches };
  }
}
