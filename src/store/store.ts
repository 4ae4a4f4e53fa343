import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { LenixError } from '../core/errors.js';
import { currentVirtualTime, virtualStart } from '../scheduler/fair-share.js';
import {
  afterLostAttempt,
  BUILD_KINDS,
  buildStateFromTasks,
  nextStage,
  type AgentRole,
  type BuildState,
  type Outcome,
  type TaskKind,
  type TaskState,
} from '../scheduler/task-state.js';
import type { Dialect } from './dialect.js';
import type {
  AgentRecord,
  ArtifactKind,
  ArtifactRecord,
  BuildRecord,
  CommitRecord,
  DeclaredPackage,
  EventRecord,
  LeaseRecord,
  SourceRecord,
  TaskRecord,
  TokenRecord,
} from './records.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

const json = (value: unknown): string => JSON.stringify(value);
const parseJson = <T>(text: string | null, fallback: T): T => (text === null ? fallback : (JSON.parse(text) as T));

/** Thrown inside a lease transaction when another server replica took the same task first. */
class LostRace extends Error {}

export interface NewBuild {
  readonly sourceId: number;
  readonly commitId: number;
  readonly ref: string;
  readonly priority: number;
  readonly arches: readonly string[];
  readonly specPath: string;
  readonly packageName: string;
  readonly packageEvr: string;
  /** Binary packages the spec declares; omitted only where no spec was parsed (seeded test data). */
  readonly declaredPackages?: readonly DeclaredPackage[] | null;
  readonly createdBy: string;
  readonly maxAttempts: number;
  readonly targetRepo?: string | null;
}

export interface BuildFilter {
  readonly sourceId?: number | undefined;
  readonly state?: BuildState | undefined;
  readonly beforeId?: number | undefined;
  /** Who started it (`createdBy`). */
  readonly createdBy?: string | undefined;
  /** Builds targeting this architecture. */
  readonly arch?: string | undefined;
  /** Text in the package name or version-release (NEVRA search). */
  readonly text?: string | undefined;
  readonly limit: number;
}

export interface LeaseGrant {
  readonly lease: LeaseRecord;
  readonly task: TaskRecord;
}

export interface NewArtifact {
  readonly buildId: number;
  readonly taskId: number;
  readonly leaseId: number;
  readonly sha256: string;
  readonly size: number;
  readonly name: string;
  readonly kind: ArtifactKind;
  readonly arch: string | null;
  readonly nevra: string | null;
  readonly parentId: number | null;
  readonly signedBy?: string | null;
}

/** What happens after a successful task, decided by the service (which may read artifacts) before commit. */
export type FollowUp =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'fan-out';
      readonly role: AgentRole;
      readonly taskKind: TaskKind;
      readonly arches: readonly string[];
    }
  | { readonly kind: 'fail-build'; readonly code: string; readonly reason: string };

export interface CompleteResult {
  readonly task: TaskRecord;
  readonly buildState: BuildState;
  readonly queuedNew: number;
}

/**
 * The one storage API over both dialects. Every multi-row change runs in a transaction; every state change
 * is conditional on the state it expects, so two server replicas over one PostgreSQL cannot both win.
 */
export class Store {
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {}

  async close(): Promise<void> {
    await this.db.destroy();
  }

  private async tx<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  // ── tokens ────────────────────────────────────────────────────────────────────────────────────────

  async createToken(
    name: string,
    tokenHash: string,
    scopes: readonly string[],
    now: number,
    expiresAt: number | null = null,
  ): Promise<number> {
    const row = await this.db
      .insertInto('tokens')
      .values({
        name,
        token_hash: tokenHash,
        scopes: json(scopes),
        created_at: now,
        revoked_at: null,
        expires_at: expiresAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async findToken(tokenHash: string): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toToken(row) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.db.selectFrom('tokens').selectAll().orderBy('id').execute()).map(toToken);
  }

  async getToken(id: number): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toToken(row) : null;
  }

  /** The open leases of agents registered with this token end now: the reaper gives their tasks back to the queue. */
  async expireLeasesOf(tokenId: number, now: number): Promise<number> {
    const leases = this.db
      .selectFrom('leases')
      .innerJoin('agents', 'agents.id', 'leases.agent_id')
      .select('leases.id')
      .where('agents.token_id', '=', tokenId)
      .where('leases.ended_at', 'is', null);
    const r = await this.db
      .updateTable('tasks')
      .set({ lease_expires_at: now - 1 })
      .where('state', '=', 'leased')
      .where('lease_id', 'in', leases)
      .executeTakeFirst();
    await this.db
      .updateTable('leases')
      .set({ expires_at: now - 1 })
      .where('id', 'in', leases)
      .execute();
    return Number(r.numUpdatedRows);
  }

  async countTokens(): Promise<number> {
    const row = await this.db
      .selectFrom('tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async revokeToken(id: number, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('tokens')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  // ── sources and commits ───────────────────────────────────────────────────────────────────────────

  async addSource(
    s: { name: string; url: string; branch: string; watch: boolean },
    now: number,
  ): Promise<SourceRecord> {
    try {
      const row = await this.db
        .insertInto('sources')
        .values({
          name: s.name,
          url: s.url,
          branch: s.branch,
          watch: s.watch ? 1 : 0,
          created_at: now,
          last_fetched_at: null,
          last_seen_commit: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toSource(row);
    } catch (err) {
      if (isUniqueViolation(err))
        throw new LenixError('SOURCE_EXISTS', `source ${s.name} already exists`, { cause: err });
      throw err;
    }
  }

  async deleteSourceIfUnused(id: number): Promise<void> {
    await this.db.deleteFrom('sources').where('id', '=', id).execute();
  }

  async getSourceByName(name: string): Promise<SourceRecord | null> {
    const row = await this.db.selectFrom('sources').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toSource(row) : null;
  }

  async getSource(id: number): Promise<SourceRecord | null> {
    const row = await this.db.selectFrom('sources').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toSource(row) : null;
  }

  async listSources(): Promise<SourceRecord[]> {
    const rows = await this.db.selectFrom('sources').selectAll().orderBy('name').execute();
    return rows.map(toSource);
  }

  async markSourceFetched(id: number, now: number, lastSeenCommit: string | null): Promise<void> {
    await this.db
      .updateTable('sources')
      .set({ last_fetched_at: now, last_seen_commit: lastSeenCommit })
      .where('id', '=', id)
      .execute();
  }

  /** Record a commit once; later calls return the same record. */
  async recordCommit(
    sourceId: number,
    c: { sha: string; tree: string; committedAt: number; subject: string },
    now: number,
  ): Promise<CommitRecord> {
    const existing = await this.db
      .selectFrom('commits')
      .selectAll()
      .where('source_id', '=', sourceId)
      .where('sha', '=', c.sha)
      .executeTakeFirst();
    if (existing) return toCommit(existing);
    try {
      const row = await this.db
        .insertInto('commits')
        .values({
          source_id: sourceId,
          sha: c.sha,
          tree: c.tree,
          committed_at: c.committedAt,
          subject: c.subject.slice(0, 1000),
          recorded_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toCommit(row);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const row = await this.db
        .selectFrom('commits')
        .selectAll()
        .where('source_id', '=', sourceId)
        .where('sha', '=', c.sha)
        .executeTakeFirstOrThrow();
      return toCommit(row);
    }
  }

  async listCommits(sourceId: number, limit: number): Promise<CommitRecord[]> {
    const rows = await this.db
      .selectFrom('commits')
      .selectAll()
      .where('source_id', '=', sourceId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toCommit);
  }

  // ── builds ────────────────────────────────────────────────────────────────────────────────────────

  /** A build starts with one SRPM task; binary tasks are added when it succeeds (see complete()). */
  async createBuild(b: NewBuild, now: number): Promise<{ build: BuildRecord; srpmTask: TaskRecord }> {
    const { buildId, taskId } = await this.tx(async (trx) => {
      const build = await trx
        .insertInto('builds')
        .values({
          source_id: b.sourceId,
          commit_id: b.commitId,
          ref: b.ref,
          state: 'queued',
          priority: b.priority,
          arches: json(b.arches),
          spec_path: b.specPath,
          package_name: b.packageName,
          package_evr: b.packageEvr,
          declared_packages: b.declaredPackages ? json(b.declaredPackages) : null,
          created_by: b.createdBy,
          created_at: now,
          started_at: null,
          finished_at: null,
          reason_code: null,
          reason: null,
          target_repo: b.targetRepo ?? null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const [taskId] = await this.enqueueTasks(trx, {
        buildId: build.id,
        sourceId: b.sourceId,
        priority: b.priority,
        maxAttempts: b.maxAttempts,
        role: 'build',
        kind: 'srpm',
        arches: ['src'],
        now,
      });
      await this.event(trx, now, 'build.created', build.id, null, { ref: b.ref, createdBy: b.createdBy });
      return { buildId: build.id, taskId: taskId! };
    });
    const build = await this.getBuild(buildId);
    const srpmTask = await this.getTask(taskId);
    return { build: build!, srpmTask: srpmTask! };
  }

  private async enqueueTasks(
    trx: Db,
    t: {
      buildId: number;
      sourceId: number;
      priority: number;
      maxAttempts: number;
      role: AgentRole;
      kind: TaskKind;
      arches: readonly string[];
      now: number;
      subject?: Record<string, unknown>;
    },
  ): Promise<number[]> {
    const ids: number[] = [];
    for (const arch of t.arches) {
      const clock = await trx
        .selectFrom('tasks')
        .select((eb) => [eb.fn.min<number>('vstart').as('min_queued')])
        .where('role', '=', t.role)
        .where('state', '=', 'queued')
        .executeTakeFirst();
      const maxAll = await trx
        .selectFrom('tasks')
        .select((eb) => eb.fn.max<number>('vstart').as('m'))
        .where('role', '=', t.role)
        .executeTakeFirst();
      const last = await trx
        .selectFrom('tasks')
        .select((eb) => eb.fn.max<number>('vstart').as('m'))
        .where('source_id', '=', t.sourceId)
        .where('role', '=', t.role)
        .executeTakeFirst();
      const now = currentVirtualTime(numOrNull(clock?.min_queued), numOrNull(maxAll?.m));
      const vstart = virtualStart(now, numOrNull(last?.m));
      const row = await trx
        .insertInto('tasks')
        .values({
          build_id: t.buildId,
          source_id: t.sourceId,
          kind: t.kind,
          role: t.role,
          arch,
          state: 'queued',
          priority: t.priority,
          vstart,
          attempts: 0,
          max_attempts: t.maxAttempts,
          fencing_token: 0,
          lease_id: null,
          agent_id: null,
          lease_expires_at: null,
          cancel_requested: 0,
          created_at: t.now,
          started_at: null,
          finished_at: null,
          reason_code: null,
          reason: null,
          result: null,
          log_size: 0,
          subject: t.subject === undefined ? null : json(t.subject),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      ids.push(row.id);
    }
    return ids;
  }

  async getBuild(id: number): Promise<BuildRecord | null> {
    const row = await this.buildQuery(this.db).where('builds.id', '=', id).executeTakeFirst();
    return row ? toBuild(row) : null;
  }

  async listBuilds(f: BuildFilter): Promise<BuildRecord[]> {
    let q = this.buildQuery(this.db);
    if (f.sourceId !== undefined) q = q.where('builds.source_id', '=', f.sourceId);
    if (f.state !== undefined) q = q.where('builds.state', '=', f.state);
    if (f.beforeId !== undefined) q = q.where('builds.id', '<', f.beforeId);
    if (f.createdBy !== undefined) q = q.where('builds.created_by', '=', f.createdBy);
    if (f.arch !== undefined) q = q.where('builds.arches', 'like', `%${JSON.stringify(f.arch).replace(/[%_]/g, '_')}%`);
    if (f.text !== undefined && f.text !== '') {
      const like = `%${f.text.replace(/[%_\\]/g, '_')}%`;
      q = q.where(sql<boolean>`(builds.package_name || '-' || builds.package_evr) like ${like}`);
    }
    const rows = await q.orderBy('builds.id', 'desc').limit(f.limit).execute();
    return rows.map(toBuild);
  }

  private buildQuery(db: Db) {
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

  /** Cancel a build: queued tasks end now; leased ones are flagged so their agent stops at the next heartbeat. */
  async cancelBuild(buildId: number, reason: string, now: number): Promise<BuildRecord> {
    await this.tx(async (trx) => {
      const build = await trx.selectFrom('builds').select(['state']).where('id', '=', buildId).executeTakeFirst();
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${buildId} does not exist`);
      if (build.state === 'succeeded' || build.state === 'failed' || build.state === 'cancelled') {
        throw new LenixError('BUILD_FINISHED', `build ${buildId} already ${build.state}`);
      }
      await trx
        .updateTable('tasks')
        .set({
          state: 'cancelled',
          finished_at: now,
          reason_code: 'CANCELLED',
          reason,
          cancel_requested: 1,
          lease_expires_at: null,
        })
        .where('build_id', '=', buildId)
        .where('state', 'in', ['queued', 'leased'])
        .execute();
      await trx
        .updateTable('leases')
        .set({ ended_at: now, outcome: 'cancelled' })
        .where('ended_at', 'is', null)
        .where('task_id', 'in', trx.selectFrom('tasks').select('id').where('build_id', '=', buildId))
        .execute();
      await trx
        .updateTable('builds')
        .set({ state: 'cancelled', finished_at: now, reason_code: 'CANCELLED', reason })
        .where('id', '=', buildId)
        .execute();
      await this.event(trx, now, 'build.cancelled', buildId, null, { reason });
    });
    return (await this.getBuild(buildId))!;
  }

  // ── tasks ─────────────────────────────────────────────────────────────────────────────────────────

  async getTask(id: number): Promise<TaskRecord | null> {
    const row = await this.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTask(row) : null;
  }

  async listTasks(buildId: number): Promise<TaskRecord[]> {
    const rows = await this.db.selectFrom('tasks').selectAll().where('build_id', '=', buildId).orderBy('id').execute();
    return rows.map(toTask);
  }

  /** Tasks in one state (e.g. `leased`: running now), oldest first. */
  async listTasksInState(state: TaskState, limit = 200): Promise<TaskRecord[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('state', '=', state)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toTask);
  }

  async listTasksOfKind(kind: TaskKind, limit = 1000): Promise<TaskRecord[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('kind', '=', kind)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toTask).reverse();
  }

  /** Queue one task outside the build pipeline (a `repomd` signing task for a publish, filed under a build of the release). */
  async enqueueTask(
    t: { buildId: number; role: AgentRole; kind: TaskKind; subject: Record<string, unknown>; maxAttempts: number },
    now: number,
  ): Promise<number> {
    return this.tx(async (trx) => {
      const build = await trx
        .selectFrom('builds')
        .select(['priority', 'source_id'])
        .where('id', '=', t.buildId)
        .executeTakeFirstOrThrow();
      const [id] = await this.enqueueTasks(trx, {
        buildId: t.buildId,
        sourceId: build.source_id,
        priority: build.priority,
        maxAttempts: t.maxAttempts,
        role: t.role,
        kind: t.kind,
        arches: ['any'],
        now,
        subject: t.subject,
      });
      await this.event(trx, now, `task.${t.kind}-queued`, t.buildId, id!, {});
      return id!;
    });
  }

  async queueLength(role: AgentRole): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('tasks')
      .select(['arch', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', '=', 'queued')
      .where('role', '=', role)
      .groupBy('arch')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.arch, Number(r.n)]));
  }

  // ── agents and leases ─────────────────────────────────────────────────────────────────────────────

  /** Register or re-register (same name and role): an agent keeps its id across restarts. */
  async registerAgent(
    a: {
      name: string;
      role: AgentRole;
      arches: readonly string[];
      capabilities: Record<string, unknown>;
      tokenId: number;
    },
    now: number,
  ): Promise<AgentRecord> {
    return this.tx(async (trx) => {
      const existing = await trx
        .selectFrom('agents')
        .selectAll()
        .where('name', '=', a.name)
        .where('role', '=', a.role)
        .executeTakeFirst();
      if (existing) {
        if (existing.token_id !== a.tokenId) {
          throw new LenixError('FORBIDDEN', `agent ${a.name} is registered with another token`);
        }
        const row = await trx
          .updateTable('agents')
          .set({ arches: json(a.arches), capabilities: json(a.capabilities), last_seen_at: now })
          .where('id', '=', existing.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return toAgent(row);
      }
      const row = await trx
        .insertInto('agents')
        .values({
          name: a.name,
          role: a.role,
          arches: json(a.arches),
          capabilities: json(a.capabilities),
          token_id: a.tokenId,
          registered_at: now,
          last_seen_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toAgent(row);
    });
  }

  async getAgent(id: number): Promise<AgentRecord | null> {
    const row = await this.db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toAgent(row) : null;
  }

  async listAgents(): Promise<AgentRecord[]> {
    const rows = await this.db.selectFrom('agents').selectAll().orderBy('id').execute();
    return rows.map(toAgent);
  }

  async touchAgent(id: number, now: number): Promise<void> {
    await this.db.updateTable('agents').set({ last_seen_at: now }).where('id', '=', id).execute();
  }

  /**
   * Hand the next task to an agent: highest priority, then smallest fair-share virtual start (fair-share.ts),
   * among queued tasks of its role and architectures. The conditional update is the fence between replicas.
   */
  async lease(agent: AgentRecord, leaseMs: number, now: number): Promise<LeaseGrant | null> {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        return await this.tx(async (trx) => {
          let pick = trx
            .selectFrom('tasks')
            .select(['id', 'fencing_token', 'attempts'])
            .where('state', '=', 'queued')
            .where('role', '=', agent.role)
            .where('arch', 'in', agent.arches.length > 0 ? [...agent.arches] : ['-'])
            .orderBy('priority', 'desc')
            .orderBy('vstart', 'asc')
            .orderBy('id', 'asc')
            .limit(1);
          // PostgreSQL: concurrent leases skip rows another transaction is taking instead of queueing behind
          // them. SQLite has one writer at a time, so there is nothing to skip.
          if (this.dialect === 'postgres') pick = pick.forUpdate().skipLocked();
          const candidate = await pick.executeTakeFirst();
          if (!candidate) return null;
          const fencing = Number(candidate.fencing_token) + 1;
          const expiresAt = now + leaseMs;
          const lease = await trx
            .insertInto('leases')
            .values({
              task_id: candidate.id,
              agent_id: agent.id,
              fencing_token: fencing,
              acquired_at: now,
              expires_at: expiresAt,
              ended_at: null,
              outcome: null,
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          const updated = await trx
            .updateTable('tasks')
            .set({
              state: 'leased',
              fencing_token: fencing,
              attempts: candidate.attempts + 1,
              lease_id: lease.id,
              agent_id: agent.id,
              lease_expires_at: expiresAt,
              started_at: sql<number>`coalesce(started_at, ${now})`,
            })
            .where('id', '=', candidate.id)
            .where('state', '=', 'queued')
            .where('fencing_token', '=', candidate.fencing_token)
            .returningAll()
            .executeTakeFirst();
          if (!updated) throw new LostRace();
          await trx
            .updateTable('builds')
            .set({ state: 'running', started_at: sql<number>`coalesce(started_at, ${now})` })
            .where('id', '=', updated.build_id)
            .where('state', '=', 'queued')
            .execute();
          return { lease: toLease(lease), task: toTask(updated) };
        });
      } catch (err) {
        if (err instanceof LostRace || isSerializationFailure(err)) continue;
        throw err;
      }
    }
    return null;
  }

  /** Check that a message belongs to the task's current lease: the right agent, the current fencing token, in time. */
  async checkLease(
    leaseId: number,
    fencingToken: number,
    agentTokenId: number,
    now: number,
    db: Db = this.db,
  ): Promise<{ lease: LeaseRecord; task: TaskRecord }> {
    const row = await db
      .selectFrom('leases')
      .innerJoin('agents', 'agents.id', 'leases.agent_id')
      .innerJoin('tasks', 'tasks.id', 'leases.task_id')
      .selectAll('tasks')
      .select([
        'leases.id as l_id',
        'leases.task_id as l_task_id',
        'leases.agent_id as l_agent_id',
        'leases.fencing_token as l_fencing_token',
        'leases.acquired_at as l_acquired_at',
        'leases.expires_at as l_expires_at',
        'leases.ended_at as l_ended_at',
        'leases.outcome as l_outcome',
        'agents.token_id as a_token_id',
      ])
      .where('leases.id', '=', leaseId)
      .executeTakeFirst();
    if (!row) throw new LenixError('LEASE_NOT_FOUND', `lease ${leaseId} does not exist`);
    if (row.a_token_id !== agentTokenId) throw new LenixError('FORBIDDEN', `lease ${leaseId} belongs to another agent`);
    const lease = toLease({
      id: row.l_id,
      task_id: row.l_task_id,
      agent_id: row.l_agent_id,
      fencing_token: row.l_fencing_token,
      acquired_at: row.l_acquired_at,
      expires_at: row.l_expires_at,
      ended_at: row.l_ended_at,
      outcome: row.l_outcome,
    });
    const task = toTask(row);
    assertCurrent(lease, task, fencingToken, now);
    return { lease, task };
  }

  async heartbeat(
    leaseId: number,
    fencingToken: number,
    agentTokenId: number,
    leaseMs: number,
    now: number,
  ): Promise<{ expiresAt: number; cancelled: boolean; agentId: number }> {
    try {
      return await this.tx(async (trx) => {
        const { lease, task } = await this.checkLease(leaseId, fencingToken, agentTokenId, now, trx);
        const expiresAt = now + leaseMs;
        const r = await trx
          .updateTable('tasks')
          .set({ lease_expires_at: expiresAt })
          .where('id', '=', task.id)
          .where('state', '=', 'leased')
          .where('fencing_token', '=', fencingToken)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1)
          throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands while heartbeating');
        await trx.updateTable('leases').set({ expires_at: expiresAt }).where('id', '=', lease.id).execute();
        return { expiresAt, cancelled: false, agentId: lease.agentId };
      });
    } catch (err) {
      // A cancelled task tells its agent to stop rather than failing the heartbeat with a bare error.
      if (err instanceof LenixError && err.code === 'LEASE_ENDED') {
        const l = await this.db.selectFrom('leases').selectAll().where('id', '=', leaseId).executeTakeFirst();
        if (l?.outcome === 'cancelled')
          return { expiresAt: Number(l.expires_at), cancelled: true, agentId: l.agent_id };
      }
      throw err;
    }
  }

  /** Requeue (or fail, when attempts are used up) every task whose lease has expired. */
  async reapExpired(now: number): Promise<TaskRecord[]> {
    const expired = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('state', '=', 'leased')
      .where('lease_expires_at', '<', now)
      .limit(500)
      .execute();
    const changed: TaskRecord[] = [];
    for (const row of expired) {
      const next = afterLostAttempt(
        row.attempts,
        row.max_attempts,
        'LEASE_EXPIRED',
        `lease ${row.lease_id} expired without a heartbeat`,
      );
      const done = await this.tx(async (trx) => {
        const set =
          next.state === 'queued'
            ? {
                state: 'queued',
                lease_id: null,
                agent_id: null,
                lease_expires_at: null,
                reason_code: 'LEASE_EXPIRED',
                reason: `lease ${row.lease_id} expired; requeued`,
              }
            : {
                state: 'failed',
                lease_expires_at: null,
                finished_at: now,
                reason_code: next.code,
                reason: next.reason,
              };
        const r = await trx
          .updateTable('tasks')
          .set(set)
          .where('id', '=', row.id)
          .where('state', '=', 'leased')
          .where('fencing_token', '=', row.fencing_token)
          .returningAll()
          .executeTakeFirst();
        if (!r) return null;
        await trx
          .updateTable('leases')
          .set({ ended_at: now, outcome: 'expired' })
          .where('id', '=', row.lease_id ?? -1)
          .execute();
        await this.event(trx, now, next.state === 'queued' ? 'task.requeued' : 'task.failed', row.build_id, row.id, {
          reason: set.reason,
        });
        if (next.state === 'failed') await this.settleBuild(trx, row.build_id, now);
        return toTask(r);
      });
      if (done) changed.push(done);
    }
    return changed;
  }

  /**
   * End a lease. Accepted once, for the current fencing token only. On success the follow-up (fan-out into
   * binary tasks, or failing the build) is applied in the same transaction, so a crash never leaves a
   * succeeded SRPM task without its binary tasks.
   */
  async complete(
    leaseId: number,
    fencingToken: number,
    agentTokenId: number,
    outcome: Outcome,
    result: Record<string, unknown> | null,
    followUp: FollowUp,
    now: number,
  ): Promise<CompleteResult> {
    return this.tx(async (trx) => {
      const { task: current } = await this.checkLease(leaseId, fencingToken, agentTokenId, now, trx);
      const row = {
        ...current,
        build_id: current.buildId,
        attempts: current.attempts,
        max_attempts: current.maxAttempts,
        result: current.result === null ? null : json(current.result),
      };
      let next: { state: TaskState; code: string | null; reason: string | null };
      switch (outcome.kind) {
        case 'success':
          next = { state: 'succeeded', code: null, reason: null };
          break;
        case 'failure':
          next = { state: 'failed', code: outcome.code, reason: outcome.reason };
          break;
        case 'error': {
          const n = afterLostAttempt(row.attempts, row.max_attempts, outcome.code, outcome.reason);
          next =
            n.state === 'queued'
              ? { state: 'queued', code: outcome.code, reason: outcome.reason }
              : { state: 'failed', code: n.code, reason: n.reason };
          break;
        }
      }
      if (next.state === 'succeeded' && followUp.kind === 'fail-build') {
        next = { state: 'failed', code: followUp.code, reason: followUp.reason };
      }
      const finished = next.state !== 'queued';
      const updated = await trx
        .updateTable('tasks')
        .set({
          state: next.state,
          reason_code: next.code,
          reason: next.reason,
          result: result === null ? row.result : json(result),
          finished_at: finished ? now : null,
          lease_expires_at: null,
          ...(finished ? {} : { lease_id: null, agent_id: null }),
        })
        .where('id', '=', row.id)
        .where('state', '=', 'leased')
        .where('fencing_token', '=', fencingToken)
        .returningAll()
        .executeTakeFirst();
      if (!updated) throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands before completion');
      await trx.updateTable('leases').set({ ended_at: now, outcome: outcome.kind }).where('id', '=', leaseId).execute();
      await this.event(trx, now, `task.${next.state}`, row.build_id, row.id, { code: next.code, reason: next.reason });

      let queuedNew = 0;
      if (next.state === 'succeeded' && followUp.kind === 'fan-out') {
        const build = await trx
          .selectFrom('builds')
          .select(['priority', 'source_id'])
          .where('id', '=', row.build_id)
          .executeTakeFirstOrThrow();
        const ids = await this.enqueueTasks(trx, {
          buildId: row.build_id,
          sourceId: build.source_id,
          priority: build.priority,
          maxAttempts: row.max_attempts,
          role: followUp.role,
          kind: followUp.taskKind,
          arches: followUp.arches,
          now,
        });
        queuedNew = ids.length;
        await this.event(trx, now, 'build.fanned-out', row.build_id, row.id, { arches: followUp.arches });
      }
      // Only the pipeline's own tasks move the build; sign/test/repomd tasks leave its state alone.
      const buildState = BUILD_KINDS.includes(row.kind)
        ? await this.settleBuild(trx, row.build_id, now)
        : ((await trx.selectFrom('builds').select('state').where('id', '=', row.build_id).executeTakeFirstOrThrow())
            .state as BuildState);
      if (next.state === 'succeeded') {
        const signing =
          (await trx.selectFrom('settings').select('value').where('key', '=', 'signing_key').executeTakeFirst()) !==
          undefined;
        const stage = nextStage(row.kind, buildState, signing);
        if (stage) {
          const build = await trx
            .selectFrom('builds')
            .select(['priority', 'source_id'])
            .where('id', '=', row.build_id)
            .executeTakeFirstOrThrow();
          queuedNew += (
            await this.enqueueTasks(trx, {
              buildId: row.build_id,
              sourceId: build.source_id,
              priority: build.priority,
              maxAttempts: row.max_attempts,
              role: stage.role,
              kind: stage.kind,
              arches: ['any'],
              now,
            })
          ).length;
          await this.event(trx, now, `build.${stage.kind}-queued`, row.build_id, row.id, {});
        }
      }
      return { task: toTask(updated), buildState, queuedNew };
    });
  }

  /** Recompute a build's state from its tasks; records the first failure's reason on the build. */
  private async settleBuild(trx: Db, buildId: number, now: number): Promise<BuildState> {
    const tasks = await trx
      .selectFrom('tasks')
      .select(['kind', 'state', 'reason_code', 'reason', 'arch'])
      .where('build_id', '=', buildId)
      .where('kind', 'in', [...BUILD_KINDS])
      .orderBy('id')
      .execute();
    const srpmDone =
      tasks.some((t) => t.kind === 'srpm' && t.state === 'succeeded') && tasks.some((t) => t.kind !== 'srpm');
    const state = buildStateFromTasks(
      tasks.map((t) => t.state as TaskState),
      srpmDone,
    );
    const failed = tasks.find((t) => t.state === 'failed');
    const done = state === 'succeeded' || state === 'failed' || state === 'cancelled';
    if (state === 'failed') {
      // A failed task ends the build: tasks still queued for it will not run.
      await trx
        .updateTable('tasks')
        .set({
          state: 'cancelled',
          finished_at: now,
          reason_code: 'BUILD_FAILED',
          reason: 'another task of the build failed',
        })
        .where('build_id', '=', buildId)
        .where('kind', 'in', [...BUILD_KINDS])
        .where('state', '=', 'queued')
        .execute();
    }
    const r = await trx
      .updateTable('builds')
      .set({
        state,
        finished_at: done ? now : null,
        reason_code: failed ? `${failed.reason_code ?? 'TASK_FAILED'}` : null,
        reason: failed ? `${failed.arch}: ${failed.reason ?? 'task failed'}` : null,
      })
      .where('id', '=', buildId)
      .where('state', 'not in', ['succeeded', 'failed', 'cancelled'])
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1 && done) await this.event(trx, now, `build.${state}`, buildId, null, {});
    return state;
  }

  // ── logs ──────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Append to a task's log at `offset`. Idempotent: bytes the server already has are skipped, so an agent
   * may resend after a lost response. A gap (offset past the end) is refused so the log stays contiguous.
   */
  async appendLog(taskId: number, offset: number, data: Uint8Array): Promise<number> {
    return this.tx(async (trx) => {
      const task = await trx
        .selectFrom('tasks')
        .select(['log_size'])
        .where('id', '=', taskId)
        .executeTakeFirstOrThrow();
      const size = Number(task.log_size);
      if (offset > size) throw new LenixError('LOG_OFFSET_GAP', `log offset ${offset} is past the stored size ${size}`);
      const skip = size - offset;
      if (skip >= data.length) return size;
      const fresh = data.subarray(skip);
      await trx
        .insertInto('log_chunks')
        .values({ task_id: taskId, start_offset: size, end_offset: size + fresh.length, data: Buffer.from(fresh) })
        .execute();
      await trx
        .updateTable('tasks')
        .set({ log_size: size + fresh.length })
        .where('id', '=', taskId)
        .execute();
      return size + fresh.length;
    });
  }

  /** Bytes of a task's log from `from` (at most `max`). */
  async readLog(taskId: number, from: number, max = 64 * 1024 * 1024): Promise<Buffer> {
    const rows = await this.db
      .selectFrom('log_chunks')
      .select(['start_offset', 'end_offset', 'data'])
      .where('task_id', '=', taskId)
      .where('end_offset', '>', from)
      .orderBy('start_offset')
      .execute();
    const parts: Buffer[] = [];
    let total = 0;
    for (const r of rows) {
      const start = Math.max(0, from - Number(r.start_offset));
      const chunk = Buffer.from(r.data).subarray(start);
      parts.push(chunk);
      total += chunk.length;
      if (total >= max) break;
    }
    return Buffer.concat(parts).subarray(0, max);
  }

  // ── artifacts ─────────────────────────────────────────────────────────────────────────────────────

  async addArtifact(a: NewArtifact, fencingToken: number, now: number): Promise<ArtifactRecord> {
    return this.tx(async (trx) => {
      // Re-check the fence inside the transaction that writes: a stale agent's upload records nothing.
      const task = await trx
        .selectFrom('tasks')
        .select(['state', 'fencing_token', 'lease_id'])
        .where('id', '=', a.taskId)
        .executeTakeFirstOrThrow();
      if (task.state !== 'leased' || Number(task.fencing_token) !== fencingToken || task.lease_id !== a.leaseId) {
        throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands during the upload');
      }
      // A retried upload of the same file in the same lease replaces nothing and returns the first record.
      const same = await trx
        .selectFrom('artifacts')
        .selectAll()
        .where('lease_id', '=', a.leaseId)
        .where('name', '=', a.name)
        .executeTakeFirst();
      if (same && same.sha256 === a.sha256) return toArtifact(same);
      if (same) await trx.deleteFrom('artifacts').where('id', '=', same.id).execute();
      const row = await trx
        .insertInto('artifacts')
        .values({
          build_id: a.buildId,
          task_id: a.taskId,
          lease_id: a.leaseId,
          sha256: a.sha256,
          size: a.size,
          name: a.name,
          kind: a.kind,
          arch: a.arch,
          nevra: a.nevra,
          parent_id: a.parentId,
          created_at: now,
          signed_by: a.signedBy ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toArtifact(row);
    });
  }

  /** Artifacts of a build as the build's record shows them: from each task's final (current) lease only. */
  async listArtifacts(buildId: number): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .innerJoin('tasks', 'tasks.id', 'artifacts.task_id')
      .selectAll('artifacts')
      .where('artifacts.build_id', '=', buildId)
      .whereRef('artifacts.lease_id', '=', 'tasks.lease_id')
      .orderBy('artifacts.id')
      .execute();
    return rows.map(toArtifact);
  }

  /** Artifacts of a kind with this NEVRA (`name-[e:]v-r.arch`), oldest first. */
  async findArtifactsByNevra(nevra: string, kind: ArtifactKind): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('nevra', '=', nevra)
      .where('kind', '=', kind)
      .orderBy('id')
      .execute();
    return rows.map(toArtifact);
  }

  /** Signed packages named `name` (any version and arch). */
  async findSignedByName(name: string): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('kind', '=', 'signed-rpm')
      .where('nevra', 'like', `${name.replace(/[%_\\]/g, '_')}-%`)
      .orderBy('id')
      .execute();
    return rows
      .map(toArtifact)
      .filter(
        (a) => a.nevra !== null && a.nevra.slice(0, a.nevra.lastIndexOf('-', a.nevra.lastIndexOf('-') - 1)) === name,
      );
  }

  async findArtifact(sha256: string): Promise<ArtifactRecord | null> {
    const row = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('sha256', '=', sha256)
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return row ? toArtifact(row) : null;
  }

  async getArtifactsByLease(leaseId: number): Promise<ArtifactRecord[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('lease_id', '=', leaseId)
      .orderBy('id')
      .execute();
    return rows.map(toArtifact);
  }

  // ── lookaside ─────────────────────────────────────────────────────────────────────────────────────

  async addLookaside(sha256: string, name: string, size: number, now: number): Promise<void> {
    const existing = await this.db
      .selectFrom('lookaside')
      .select('sha256')
      .where('sha256', '=', sha256)
      .executeTakeFirst();
    if (existing) return;
    await this.db.insertInto('lookaside').values({ sha256, name, size, uploaded_at: now }).execute();
  }

  /** Every digest a record points at (artifacts and lookaside files): the blobs that must be kept. */
  async referencedBlobs(): Promise<Set<string>> {
    const a = await this.db.selectFrom('artifacts').select('sha256').distinct().execute();
    const l = await this.db.selectFrom('lookaside').select('sha256').execute();
    return new Set([...a.map((r) => r.sha256), ...l.map((r) => r.sha256)]);
  }

  async hasLookaside(sha256: string): Promise<boolean> {
    return (
      (await this.db.selectFrom('lookaside').select('sha256').where('sha256', '=', sha256).executeTakeFirst()) !==
      undefined
    );
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────────────

  private async event(
    trx: Db,
    at: number,
    kind: string,
    buildId: number | null,
    taskId: number | null,
    data: Record<string, unknown>,
  ): Promise<void> {
    await trx
      .insertInto('events')
      .values({ at, kind, build_id: buildId, task_id: taskId, data: json(data) })
      .execute();
  }

  async listEvents(buildId: number): Promise<EventRecord[]> {
    const rows = await this.db.selectFrom('events').selectAll().where('build_id', '=', buildId).orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      at: Number(r.at),
      kind: r.kind,
      buildId: r.build_id,
      taskId: r.task_id,
      data: parseJson(r.data, {}),
    }));
  }
}

function toToken(row: Selectable<Database['tokens']>): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    scopes: parseJson(row.scopes, []),
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    expiresAt: row.expires_at === null || row.expires_at === undefined ? null : Number(row.expires_at),
  };
}

function assertCurrent(lease: LeaseRecord, task: TaskRecord, fencingToken: number, now: number): void {
  if (task.fencingToken !== fencingToken || task.leaseId !== lease.id || lease.fencingToken !== fencingToken) {
    throw new LenixError('STALE_FENCING_TOKEN', `fencing token ${fencingToken} is not current for task ${task.id}`);
  }
  if (lease.endedAt !== null || task.state !== 'leased') {
    throw new LenixError('LEASE_ENDED', `lease ${lease.id} already ended (${lease.outcome ?? task.state})`);
  }
  if (task.leaseExpiresAt !== null && task.leaseExpiresAt < now) {
    throw new LenixError('LEASE_EXPIRED', `lease ${lease.id} expired`);
  }
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

function isSerializationFailure(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '40001' || e?.code === '40P01' || e?.code === 'SQLITE_BUSY';
}

function toSource(r: Selectable<Database['sources']>): SourceRecord {
  return {
    id: r.id,
    name: r.name,
    url: r.url,
    branch: r.branch,
    watch: r.watch === 1,
    createdAt: Number(r.created_at),
    lastFetchedAt: numOrNull(r.last_fetched_at),
    lastSeenCommit: r.last_seen_commit,
  };
}

function toCommit(r: Selectable<Database['commits']>): CommitRecord {
  return {
    id: r.id,
    sourceId: r.source_id,
    sha: r.sha,
    tree: r.tree,
    committedAt: Number(r.committed_at),
    subject: r.subject,
  };
}

function toBuild(
  r: Selectable<Database['builds']> & {
    source_name: string;
    commit_sha: string;
    commit_tree: string;
    commit_committed_at: number;
    commit_subject: string;
  },
): BuildRecord {
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
  };
}

function toTask(r: Selectable<Database['tasks']>): TaskRecord {
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
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    cancelRequested: r.cancel_requested === 1,
    createdAt: Number(r.created_at),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    reasonCode: r.reason_code,
    reason: r.reason,
    result: parseJson(r.result, null),
    logSize: Number(r.log_size),
    subject: parseJson(r.subject ?? null, null),
  };
}

function toAgent(r: Selectable<Database['agents']>): AgentRecord {
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

function toLease(r: Selectable<Database['leases']>): LeaseRecord {
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

function toArtifact(r: Selectable<Database['artifacts']>): ArtifactRecord {
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
  };
}
