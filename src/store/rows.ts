import type { TaskResult } from '../core/protocol.js';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { AgentRole, BuildState, TaskKind, TaskState } from '../scheduler/task-state.js';
import type {
  AgentRecord,
  ArtifactKind,
  ArtifactRecord,
  BuildRecord,
  CommitRecord,
  DeclaredPackage,
  LeaseRecord,
  SourceRecord,
  TaskRecord,
  TokenRecord,
} from './records.js';
import type { Database } from './schema.js';

/**
 * What the stores share: the handle type (the database or a transaction on it), JSON columns, driver error
 * codes, and the row → record mappers (rows are parsed into typed records once, here).
 */
export type Db = Kysely<Database> | Transaction<Database>;

export const json = (value: unknown): string => JSON.stringify(value);
export const parseJson = <T>(text: string | null, fallback: T): T =>
  text === null ? fallback : (JSON.parse(text) as T);

export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function isSerializationFailure(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '40001' || e?.code === '40P01' || e?.code === 'SQLITE_BUSY';
}

/**
 * The database went away under a query (a failover, a restart, a cut connection) rather than refusing it:
 * the same work may succeed on a new connection. PostgreSQL classes 08 (connection exception) and 57P0x
 * (operator intervention: shutdown, cannot connect now), the socket errors node-postgres reports, and a
 * read-only transaction (a primary that became a standby).
 */
export function isTransientDbError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (typeof e.code === 'string' && (/^08/.test(e.code) || /^57P0[1-4]$/.test(e.code) || e.code === '25006'))
    return true;
  if (e.code === 'ECONNRESET' || e.code === 'ECONNREFUSED' || e.code === 'EPIPE' || e.code === 'ETIMEDOUT') return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(e.message ?? '');
}

export function toToken(row: Selectable<Database['tokens']>): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    scopes: parseJson(row.scopes, []),
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    expiresAt: row.expires_at === null || row.expires_at === undefined ? null : Number(row.expires_at),
  };
}

export function toSource(r: Selectable<Database['sources']>): SourceRecord {
  return {
    id: r.id,
    name: r.name,
    url: r.url,
    branch: r.branch,
    watch: r.watch === 1,
    createdAt: Number(r.created_at),
    lastFetchedAt: numOrNull(r.last_fetched_at),
    lastSeenCommit: r.last_seen_commit,
    targetId: r.target_id,
    hook: r.hook_secret !== null,
  };
}

export function toCommit(r: Selectable<Database['commits']>): CommitRecord {
  return {
    id: r.id,
    sourceId: r.source_id,
    sha: r.sha,
    tree: r.tree,
    committedAt: Number(r.committed_at),
    subject: r.subject,
  };
}

/** A build's row with its source's name and its commit (`buildQuery`). */
export type BuildRow = Selectable<Database['builds']> & {
  source_name: string;
  commit_sha: string;
  commit_tree: string;
  commit_committed_at: number;
  commit_subject: string;
};

export function toBuild(r: BuildRow): BuildRecord {
  return {
    id: r.id,
    sourceId: r.source_id,
    sourceName: r.source_name,
    commit: {
      id: r.commit_id,
      sourceId: r.source_id,
      sha: r.commit_sha,
      tree: r.commit_tree,
      committedAt: Number(r.commit_committed_at),
      subject: r.commit_subject,
    },
    ref: r.ref,
    state: r.state as BuildState,
    priority: r.priority,
    arches: parseJson(r.arches, []),
    specPath: r.spec_path,
    packageName: r.package_name,
    packageEvr: r.package_evr,
    declaredPackages:
      r.declared_packages === null || r.declared_packages === undefined
        ? null
        : parseJson<DeclaredPackage[]>(r.declared_packages, []),
    createdBy: r.created_by,
    createdAt: Number(r.created_at),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    reasonCode: r.reason_code,
    reason: r.reason,
    targetRepo: r.target_repo ?? null,
    targetId: numOrNull(r.target_id),
    batchId: numOrNull(r.batch_id),
  };
}

export function toTask(r: Selectable<Database['tasks']>): TaskRecord {
  return {
    id: r.id,
    buildId: r.build_id,
    sourceId: r.source_id,
    kind: r.kind as TaskKind,
    role: r.role as AgentRole,
    arch: r.arch,
    state: r.state as TaskState,
    priority: r.priority,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    fencingToken: Number(r.fencing_token),
    leaseId: r.lease_id,
    agentId: r.agent_id,
    cancelRequested: r.cancel_requested === 1,
    createdAt: Number(r.created_at),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    reasonCode: r.reason_code,
    reason: r.reason,
    // Parsed by kind (core/protocol.ts parseTaskResult) before it was stored.
    result: parseJson<TaskResult | null>(r.result, null),
    logSize: Number(r.log_size),
    subject: parseJson(r.subject ?? null, null),
  };
}

export function toAgent(r: Selectable<Database['agents']>): AgentRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role as AgentRole,
    arches: parseJson(r.arches, []),
    capabilities: parseJson(r.capabilities, {}),
    tokenId: r.token_id,
    registeredAt: Number(r.registered_at),
    lastSeenAt: Number(r.last_seen_at),
  };
}

export function toLease(r: Selectable<Database['leases']>): LeaseRecord {
  return {
    id: r.id,
    taskId: r.task_id,
    agentId: r.agent_id,
    fencingToken: Number(r.fencing_token),
    acquiredAt: Number(r.acquired_at),
    expiresAt: Number(r.expires_at),
    endedAt: numOrNull(r.ended_at),
    outcome: r.outcome,
  };
}

export function toArtifact(r: Selectable<Database['artifacts']>): ArtifactRecord {
  return {
    id: r.id,
    buildId: r.build_id,
    taskId: r.task_id,
    sha256: r.sha256,
    size: Number(r.size),
    name: r.name,
    kind: r.kind as ArtifactKind,
    arch: r.arch,
    nevra: r.nevra,
    parentId: r.parent_id,
    createdAt: Number(r.created_at),
    signedBy: r.signed_by ?? null,
    prunedAt: r.pruned_at === null || r.pruned_at === undefined ? null : Number(r.pruned_at),
  };
}

/** A build with its source's name and its commit, as every reader sees it. */
export function buildQuery(db: Db) {
  return db
    .selectFrom('builds')
    .innerJoin('sources', 'sources.id', 'builds.source_id')
    .innerJoin('commits', 'commits.id', 'builds.commit_id')
    .selectAll('builds')
    .select([
      'sources.name as source_name',
      'commits.sha as commit_sha',
      'commits.tree as commit_tree',
      'commits.committed_at as commit_committed_at',
      'commits.subject as commit_subject',
    ]);
}

export async function taskById(db: Db, id: number): Promise<TaskRecord | null> {
  const row = await db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toTask(row) : null;
}
