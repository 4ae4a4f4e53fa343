import type { Kysely } from 'kysely';
import type { AgentRole, TaskKind, TaskState } from '../../scheduler/task-state.js';
import type { Dialect } from '../dialect.js';
import type { AgentRecord, TaskRecord } from '../records.js';
import { buildQuery, taskById, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import { readById, withStatements } from '../statements.js';
import { checkLease } from './check-lease.js';
import { type CompleteResult, type CompletionArgs, complete, completeAndLease, type NextLease } from './complete.js';
import { enqueueTask } from './enqueue.js';
import { giveBack } from './give-back.js';
import { heartbeat } from './heartbeat.js';
import { type LeaseGrant, lease } from './lease.js';
import { reapExpired } from './reap.js';

export type { CompleteResult, NextGrant, NextLease } from './complete.js';

/** An operation's parameters after the database handle (the queue passes its own). */
type AfterDb<F> = F extends (db: never, ...rest: infer R) => unknown ? R : never;
type AfterDialect<F> = F extends (db: never, dialect: never, ...rest: infer R) => unknown ? R : never;
export type { LeaseGrant } from './lease.js';

/**
 * The task queue: tasks are leased to agents under a fencing token, kept alive by heartbeats, completed once,
 * and reaped when their lease expires. One file per operation beside this one; every state change is
 * conditional on the state it expects, so two server replicas over one PostgreSQL cannot both win.
 */
export class TaskQueue {
  private readonly buildById;
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {
    this.buildById = readById(db, (id) => buildQuery(db).where('builds.id', '=', id));
  }

  get(id: number): Promise<TaskRecord | null> {
    return taskById(this.db, id);
  }

  async listOfBuild(buildId: number): Promise<TaskRecord[]> {
    const rows = await this.db.selectFrom('tasks').selectAll().where('build_id', '=', buildId).orderBy('id').execute();
    return rows.map(toTask);
  }

  /** Tasks in one state (e.g. `leased`: running now), oldest first. */
  async listInState(state: TaskState, limit = 200): Promise<TaskRecord[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('state', '=', state)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toTask);
  }

  /** The newest tasks of a kind, oldest first. */
  async listOfKind(kind: TaskKind, limit = 1000): Promise<TaskRecord[]> {
    const rows = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('kind', '=', kind)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toTask).reverse();
  }

  /** Queued tasks of a role per architecture. */
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

  /** Queue one task outside the build pipeline (a `repomd` signing task for a publish, filed under a build). */
  enqueue(
    t: { buildId: number; role: AgentRole; kind: TaskKind; subject: Record<string, unknown>; maxAttempts: number },
    now: number,
  ): Promise<number> {
    return enqueueTask(this.db, t, now);
  }

  lease(agent: AgentRecord, leaseMs: number, now: number): Promise<LeaseGrant | null> {
    return lease(this.db, this.dialect, agent, leaseMs, now, this.buildById);
  }

  checkLease(...a: AfterDb<typeof checkLease>): ReturnType<typeof checkLease> {
    return withStatements(this.db, (q) => checkLease(q, ...a));
  }

  heartbeat(...a: AfterDialect<typeof heartbeat>): ReturnType<typeof heartbeat> {
    return heartbeat(this.db, this.dialect, ...a);
  }

  giveBack(...a: AfterDb<typeof giveBack>): Promise<boolean> {
    return giveBack(this.db, ...a);
  }

  reapExpired(now: number): Promise<TaskRecord[]> {
    return reapExpired(this.db, now);
  }

  complete(...a: AfterDialect<typeof complete>): Promise<CompleteResult> {
    return complete(this.db, this.dialect, ...a);
  }

  /** A completion that leases the agent's next task too (complete.ts). */
  completeAndLease(next: NextLease, ...completion: CompletionArgs): ReturnType<typeof completeAndLease> {
    const now = completion[6]; // the completion's time, its last argument
    return completeAndLease(
      this.db,
      this.dialect,
      next,
      (skip) => lease(this.db, this.dialect, next.agent, next.leaseMs, now, this.buildById, skip),
      ...completion,
    );
  }
}
