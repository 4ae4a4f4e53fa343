import { publicSourceUrl } from '../../core/source-url.js';
import { cves, nevraOf } from '../../errata/advisory.js';
import { osvId } from '../../errata/osv.js';
import type { StoredAdvisory } from '../../store/errata-store.js';
import type {
  AgentRecord,
  ArtifactRecord,
  BuildRecord,
  ReleaseRecord,
  RepoRecord,
  TargetRecord,
  BatchRecord,
  ImportRecord,
  SnapshotRecord,
  SourceRecord,
  TaskRecord,
  TokenRecord,
} from '../../store/records.js';
import { buildrootOf, untestedArchesOf } from '../../core/protocol.js';

/** The JSON shapes the API returns (times as ISO 8601 strings). One place, so every route agrees. */
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const when = (ms: number): string => new Date(ms).toISOString();

export function presentSource(s: SourceRecord) {
  return {
    id: s.id,
    name: s.name,
    url: publicSourceUrl(s.name, s.url),
    branch: s.branch,
    watch: s.watch,
    targetId: s.targetId,
    hook: s.hook,
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
    prunedAt: iso(a.prunedAt),
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
    buildroot: buildrootOf(t.result),
    // A test task: the arches whose packages its tester could not install, and why.
    ...(t.kind === 'test' ? { untested: untestedArchesOf(t.result) } : {}),
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
    targetId: b.targetId,
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

export function presentToken(t: TokenRecord) {
  return {
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
  };
}

export function presentRepo(r: RepoRecord) {
  return {
    id: r.id,
    name: r.name,
    arches: r.arches,
    keys: r.keys.map((k) => ({ fingerprint: k.fingerprint, addedAt: iso(k.addedAt), retiredAt: iso(k.retiredAt) })),
    currentSnapshot: r.currentSnapshotId,
    keepDays: r.keepDays,
    keepVersions: r.keepVersions,
    vendor: r.vendor,
    distro: r.distro,
    errataPrefix: r.errataPrefix,
    osvEcosystem: r.osvEcosystem,
    followTargetId: r.followTargetId,
    autoRelease: r.autoRelease,
    createdAt: iso(r.createdAt),
    repoFile: `/repos/${r.name}.repo`,
  };
}

export function presentBatch(b: BatchRecord, target: string, builds: ReadonlyMap<number, BuildRecord>) {
  return {
    id: b.id,
    target,
    state: b.state,
    reason: b.reason,
    groups: b.groups.map((sources, i) => ({
      sources,
      builds: (b.builds[i] ?? []).map((id) => {
        const x = builds.get(id);
        return { id, source: x?.sourceName ?? null, state: x?.state ?? null, reason: x?.reason ?? null };
      }),
    })),
    createdBy: b.createdBy,
    createdAt: iso(b.createdAt),
    finishedAt: iso(b.finishedAt),
  };
}

export function presentImport(i: ImportRecord) {
  return {
    id: i.id,
    name: i.name,
    nevra: i.nevra,
    arch: i.arch,
    kind: i.kind,
    sha256: i.sha256,
    size: i.size,
    signature: i.keyFingerprint ? { key: i.keyFingerprint } : { unsigned: true as const },
    repo: i.repo,
    importedBy: i.importedBy,
    createdAt: iso(i.createdAt),
    url: `/api/v1/imports/${i.id}`,
  };
}

export function presentTarget(t: TargetRecord) {
  return {
    id: t.id,
    name: t.name,
    buildRepo: t.buildRepo,
    fromRepos: t.fromRepos,
    externalRepos: t.externalRepos,
    arches: t.arches,
    macros: t.macros,
    releaseTo: t.releaseTo,
    platform: t.platform,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
  };
}

export function presentRelease(r: ReleaseRecord) {
  return {
    id: r.id,
    repoId: r.repoId,
    state: r.state,
    builds: r.builds,
    plan: r.plan,
    overrideReason: r.overrideReason,
    createdBy: r.createdBy,
    createdAt: iso(r.createdAt),
    approvedBy: r.approvedBy,
    approvedAt: iso(r.approvedAt),
    snapshot: r.snapshotId,
    finishedAt: iso(r.finishedAt),
    reasonCode: r.reasonCode,
    reason: r.reason,
  };
}

export function presentSnapshot(s: SnapshotRecord) {
  return {
    id: s.id,
    state: s.state,
    release: s.releaseId,
    packages: s.packages,
    repomd: s.repomd,
    key: s.keyFingerprint,
    createdAt: iso(s.createdAt),
    publishedAt: iso(s.publishedAt),
  };
}

export function presentAdvisory(a: StoredAdvisory) {
  return {
    id: a.id,
    repo: a.repo,
    type: a.type,
    severity: a.severity,
    status: a.status,
    title: a.title,
    synopsis: a.synopsis,
    description: a.description,
    issued: when(a.issued),
    updated: when(a.updated),
    version: a.version,
    rebootSuggested: a.rebootSuggested,
    cves: cves(a),
    references: a.references,
    packages: a.packages.map((p) => ({ ...p, nevra: nevraOf(p) })),
    upstreamId: a.upstreamId,
    release: a.releaseId,
    createdBy: a.createdBy,
    approvedBy: a.approvedBy,
    osv: `/errata/osv/${osvId(a.id)}.json`,
  };
}
