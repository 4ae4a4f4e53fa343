import type { Readable } from 'node:stream';
import { LenixError } from '../../core/errors.js';
import type { BuildTaskPayload } from '../../core/protocol.js';
import { parsePlainName, parseSha256 } from '../../core/ids.js';
import { packageInfo, readRpmFileHeader } from '../../rpm/header.js';
import { planFanOut } from '../../scheduler/fan-out.js';
import type { AgentRole, Outcome } from '../../scheduler/task-state.js';
import type { AgentRecord, ArtifactKind, ArtifactRecord, TaskRecord } from '../../store/records.js';
import type { FollowUp, LeaseGrant } from '../../store/store.js';
import type { Caller } from '../auth.js';
import type { ServerDeps } from '../context.js';

/** The server side of the agent protocol (architecture page, "Agent protocol"). */
export class AgentService {
  /** When each agent was last marked seen; "last seen" is written at most every few seconds per agent. */
  private readonly seen = new Map<number, number>();
  constructor(private readonly deps: ServerDeps) {}

  private async touch(agentId: number): Promise<void> {
    const now = this.deps.clock.now();
    if (now - (this.seen.get(agentId) ?? 0) < 5000) return;
    this.seen.set(agentId, now);
    await this.deps.store.touchAgent(agentId, now);
  }

  async register(caller: Caller, a: { name: string; role: AgentRole; arches: string[]; capabilities: Record<string, unknown> }): Promise<AgentRecord> {
    return this.deps.store.registerAgent({ ...a, tokenId: caller.tokenId }, this.deps.clock.now());
  }

  async agentFor(caller: Caller, agentId: number): Promise<AgentRecord> {
    const agent = await this.deps.store.getAgent(agentId);
    if (!agent) throw new LenixError('AGENT_NOT_FOUND', `agent ${agentId} is not registered`);
    if (agent.tokenId !== caller.tokenId) throw new LenixError('FORBIDDEN', `agent ${agentId} belongs to another token`);
    return agent;
  }

  /** Lease with long-poll: wait up to `waitMs` for work, waking when tasks are queued. */
  async lease(agent: AgentRecord, waitMs: number, signal: AbortSignal): Promise<{ grant: LeaseGrant; payload: BuildTaskPayload } | null> {
    const deadline = this.deps.clock.now() + Math.min(waitMs, this.deps.config.longPollMaxMs);
    await this.touch(agent.id);
    // Expired leases are requeued by the server's reaper (every second), which also wakes waiters here.
    for (;;) {
      const grant = await this.deps.store.lease(agent, this.deps.config.leaseMs, this.deps.clock.now());
      if (grant) return { grant, payload: await this.payload(grant.task) };
      const left = deadline - this.deps.clock.now();
      if (left <= 0 || signal.aborted) return null;
      await this.deps.notifier.wait('queue', Math.min(left, 1000), signal);
    }
  }

  async reap(): Promise<void> {
    const changed = await this.deps.store.reapExpired(this.deps.clock.now());
    if (changed.length > 0) {
      this.deps.notifier.emit('queue');
      for (const t of changed) this.deps.notifier.emit(`task:${t.id}`);
      this.deps.log.warn({ component: 'scheduler', tasks: changed.map((t) => t.id) }, 'leases expired');
    }
  }

  private async payload(task: TaskRecord): Promise<BuildTaskPayload> {
    const build = await this.deps.store.getBuild(task.buildId);
    if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${task.buildId} vanished`);
    let srpm: BuildTaskPayload['srpm'] = null;
    if (task.kind === 'binary') {
      const a = (await this.deps.store.listArtifacts(build.id)).find((x) => x.kind === 'srpm');
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
    };
  }

  async heartbeat(caller: Caller, leaseId: number, fencingToken: number) {
    const r = await this.deps.store.heartbeat(leaseId, fencingToken, caller.tokenId, this.deps.config.leaseMs, this.deps.clock.now());
    await this.touch(r.agentId);
    return { expiresAt: r.expiresAt, cancelled: r.cancelled };
  }

  async appendLog(caller: Caller, leaseId: number, fencingToken: number, offset: number, data: Uint8Array): Promise<number> {
    const { task } = await this.deps.store.checkLease(leaseId, fencingToken, caller.tokenId, this.deps.clock.now());
    const size = await this.deps.store.appendLog(task.id, offset, data);
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
    q: { fencingToken: number; name: string; sha256: string; kind: ArtifactKind },
    body: Readable,
  ): Promise<ArtifactRecord> {
    const name = parsePlainName(q.name, 'artifact name');
    const expected = parseSha256(q.sha256);
    if ((q.kind === 'srpm') !== name.endsWith('.src.rpm') || (q.kind === 'rpm' && !name.endsWith('.rpm'))) {
      throw new LenixError('BAD_REQUEST', `artifact kind ${q.kind} does not fit the name ${name}`);
    }
    const { lease, task } = await this.deps.store.checkLease(leaseId, q.fencingToken, caller.tokenId, this.deps.clock.now());
    const { sha256, size } = await this.deps.blobs.put(body, { expected, maxBytes: this.deps.config.maxUploadBytes });
    let nevra: string | null = null;
    let arch: string | null = null;
    let parentId: number | null = null;
    if (q.kind === 'srpm' || q.kind === 'rpm') {
      const info = packageInfo(await readRpmFileHeader(this.deps.blobs.pathOf(sha256)));
      if (info.isSource !== (q.kind === 'srpm')) throw new LenixError('BAD_REQUEST', `${name} is ${info.isSource ? 'a source' : 'a binary'} package`);
      arch = info.arch;
      const epoch = info.epoch ? `${info.epoch}:` : '';
      nevra = `${info.name}-${epoch}${info.version}-${info.release}.${info.arch}`;
      if (q.kind === 'rpm') {
        const srpm = (await this.deps.store.listArtifacts(task.buildId)).find((a) => a.kind === 'srpm');
        parentId = srpm?.id ?? null;
      }
    }
    return this.deps.store.addArtifact(
      { buildId: task.buildId, taskId: task.id, leaseId: lease.id, sha256, size, name, kind: q.kind, arch, nevra, parentId },
      q.fencingToken,
      this.deps.clock.now(),
    );
  }

  async complete(caller: Caller, leaseId: number, fencingToken: number, outcome: Outcome, result: Record<string, unknown> | null) {
    const now = this.deps.clock.now();
    // Only a success needs the task first (to plan its follow-up); store.complete re-checks the lease in its transaction.
    const followUp = outcome.kind === 'success' ? await this.followUp((await this.deps.store.checkLease(leaseId, fencingToken, caller.tokenId, now)).task, leaseId) : ({ kind: 'none' } as const);
    const r = await this.deps.store.complete(leaseId, fencingToken, caller.tokenId, outcome, result, followUp, now);
    if (r.queuedNew > 0 || r.task.state === 'queued') this.deps.notifier.emit('queue');
    this.deps.notifier.emit(`task:${r.task.id}`);
    this.deps.notifier.emit(`log:${r.task.id}`);
    this.deps.log.info({ component: 'scheduler', task: r.task.id, build: r.task.buildId, state: r.task.state, buildState: r.buildState }, 'task completed');
    return r;
  }

  /** After a successful SRPM task: read the SRPM's header and fan out one binary task per allowed arch. */
  private async followUp(task: TaskRecord, leaseId: number): Promise<FollowUp> {
    const uploaded = await this.deps.store.getArtifactsByLease(leaseId);
    if (task.kind === 'binary') {
      return uploaded.some((a) => a.kind === 'rpm') ? { kind: 'none' } : { kind: 'fail-build', code: 'NO_PACKAGES', reason: 'the binary task uploaded no RPM' };
    }
    const srpm = uploaded.find((a) => a.kind === 'srpm');
    if (!srpm) return { kind: 'fail-build', code: 'SRPM_MISSING', reason: 'the SRPM task uploaded no source package' };
    const build = await this.deps.store.getBuild(task.buildId);
    const info = packageInfo(await readRpmFileHeader(this.deps.blobs.pathOf(parseSha256(srpm.sha256))));
    const plan = planFanOut(info, build?.arches ?? this.deps.config.arches);
    if (plan.kind === 'excluded') return { kind: 'fail-build', code: 'ARCH_EXCLUDED', reason: plan.reason };
    return { kind: 'fan-out', role: 'build', taskKind: 'binary', arches: plan.arches };
  }
}
