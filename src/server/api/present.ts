import { publicSourceUrl } from '../../core/source-url.js';
import type { AgentRecord, ArtifactRecord, BuildRecord, SourceRecord, TaskRecord } from '../../store/records.js';

/** The JSON shapes the API returns (times as ISO 8601 strings). One place, so every route agrees. */
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function presentSource(s: SourceRecord) {
  return {
    id: s.id,
    name: s.name,
    url: publicSourceUrl(s.name, s.url),
    branch: s.branch,
    watch: s.watch,
    createdAt: iso(s.createdAt),
    lastFetchedAt: iso(s.lastFetchedAt),
  };
}

export function presentArtifact(a: ArtifactRecord) {
  return {
    id: a.id,
    name: a.name,
    kind: a.kind,
    sha256: a.sha256,
    size: a.size,
    arch: a.arch,
    nevra: a.nevra,
    parentId: a.parentId,
    url: `/api/v1/artifacts/${a.sha256}`,
  };
}

export function presentTask(t: TaskRecord, artifacts: readonly ArtifactRecord[] = []) {
  return {
    id: t.id,
    buildId: t.buildId,
    kind: t.kind,
    role: t.role,
    arch: t.arch,
    state: t.state,
    attempts: t.attempts,
    maxAttempts: t.maxAttempts,
    agentId: t.agentId,
    createdAt: iso(t.createdAt),
    startedAt: iso(t.startedAt),
    finishedAt: iso(t.finishedAt),
    reasonCode: t.reasonCode,
    reason: t.reason,
    logSize: t.logSize,
    logUrl: `/api/v1/tasks/${t.id}/log`,
    buildroot: (t.result?.['buildroot'] as unknown) ?? null,
    artifacts: artifacts.filter((a) => a.taskId === t.id).map(presentArtifact),
  };
}

export function presentBuild(b: BuildRecord, tasks?: readonly TaskRecord[], artifacts: readonly ArtifactRecord[] = []) {
  return {
    id: b.id,
    source: b.sourceName,
    ref: b.ref,
    commit: b.commit.sha,
    tree: b.commit.tree,
    commitTime: iso(b.commit.committedAt * 1000),
    subject: b.commit.subject,
    package: b.packageName,
    evr: b.packageEvr,
    specPath: b.specPath,
    state: b.state,
    priority: b.priority,
    arches: b.arches,
    createdBy: b.createdBy,
    createdAt: iso(b.createdAt),
    startedAt: iso(b.startedAt),
    finishedAt: iso(b.finishedAt),
    reasonCode: b.reasonCode,
    reason: b.reason,
    targetRepo: b.targetRepo,
    ...(tasks ? { tasks: tasks.map((t) => presentTask(t, artifacts)) } : {}),
  };
}

export function presentAgent(a: AgentRecord, now: number, onlineWithinMs: number) {
  return {
    id: a.id,
    name: a.name,
    role: a.role,
    arches: a.arches,
    capabilities: a.capabilities,
    registeredAt: iso(a.registeredAt),
    lastSeenAt: iso(a.lastSeenAt),
    online: now - a.lastSeenAt <= onlineWithinMs,
  };
}
