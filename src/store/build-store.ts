import { sql, type Kysely } from 'kysely';
import { LenixError } from '../core/errors.js';
import type { BuildState } from '../scheduler/task-state.js';
import { listEvents, recordEvent } from './events.js';
import { enqueueTasks } from './queue/enqueue.js';
import type { BuildRecord, DeclaredPackage, EventRecord, TaskRecord } from './records.js';
import type { Database } from './schema.js';
import { buildQuery, json, taskById, toBuild } from './rows.js';
import { kyselyStatements, readById } from './statements.js';

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
  readonly targetId?: number | null;
  readonly batchId?: number | null;
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

/** Builds: created with their SRPM task, listed and filtered, cancelled; their event history. */
export class BuildStore {
  /** Read on every lease and completion. */
  private readonly byId: (id: number) => Promise<Parameters<typeof toBuild>[0] | undefined>;

  constructor(readonly db: Kysely<Database>) {
    this.byId = readById(db, (id) => buildQuery(db).where('builds.id', '=', id));
  }

  /** A build starts with one SRPM task; binary tasks are added when it succeeds (see complete()). */
  async create(b: NewBuild, now: number): Promise<{ build: BuildRecord; srpmTask: TaskRecord }> {
    const { buildId, taskId } = await this.db.transaction().execute(async (trx) => {
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
          target_id: b.targetId ?? null,
          batch_id: b.batchId ?? null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const [taskId] = await enqueueTasks(kyselyStatements(trx), {
        buildId: build.id,
        sourceId: b.sourceId,
        priority: b.priority,
        maxAttempts: b.maxAttempts,
        role: 'build',
        kind: 'srpm',
        arches: ['src'],
        now,
      });
      await recordEvent(kyselyStatements(trx), now, 'build.created', build.id, null, {
        ref: b.ref,
        createdBy: b.createdBy,
      });
      return { buildId: build.id, taskId: taskId! };
    });
    const build = await this.get(buildId);
    const srpmTask = await taskById(this.db, taskId);
    return { build: build!, srpmTask: srpmTask! };
  }

  async get(id: number): Promise<BuildRecord | null> {
    const row = await this.byId(id);
    return row ? toBuild(row) : null;
  }

  async list(f: BuildFilter): Promise<BuildRecord[]> {
    let q = buildQuery(this.db);
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

  /** Cancel a build: queued tasks end now; leased ones are flagged so their agent stops at the next heartbeat. */
  async cancel(buildId: number, reason: string, now: number): Promise<BuildRecord> {
    await this.db.transaction().execute(async (trx) => {
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
        })
        .where('build_id', '=', buildId)
        .where('state', 'in', ['queued', 'leased'])
        .execute();
      await trx
        .updateTable('leases')
        .set({ ended_at: now, outcome: 'cancelled' })
        .where('ended_at', 'is', null)
        // Only a task's current lease (`lease_id`) can be open: completing, giving back and expiry end a lease.
        .where('id', 'in', trx.selectFrom('tasks').select('lease_id').where('build_id', '=', buildId))
        .execute();
      await trx
        .updateTable('builds')
        .set({ state: 'cancelled', finished_at: now, reason_code: 'CANCELLED', reason })
        .where('id', '=', buildId)
        .execute();
      await recordEvent(kyselyStatements(trx), now, 'build.cancelled', buildId, null, { reason });
    });
    return (await this.get(buildId))!;
  }

  async listEvents(buildId: number): Promise<EventRecord[]> {
    return listEvents(this.db, buildId);
  }
}
