import { sql, type Kysely } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { Dialect } from '../dialect.js';
import type { Database } from '../schema.js';
import { inTransaction, withStatements } from '../statements.js';
import { checkLease } from './check-lease.js';

/** Extend the current lease; a cancelled task answers `cancelled` so its agent stops. */
export async function heartbeat(
  db: Kysely<Database>,
  dialect: Dialect,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  leaseMs: number,
  now: number,
): Promise<{ expiresAt: number; cancelled: boolean; agentId: number }> {
  const expiresAt = now + leaseMs;
  if (dialect === 'postgres') {
    const agentId = await heartbeatInOneStatement(db, leaseId, fencingToken, agentTokenId, expiresAt, now);
    if (agentId !== undefined) return { expiresAt, cancelled: false, agentId };
    // Refused: the checked transaction below finds the reason and fails with it (a cancelled task: `cancelled`).
  }
  try {
    return await inTransaction(db, async (q) => {
      const { lease, task } = await checkLease(q, leaseId, fencingToken, agentTokenId, now);
      const changed = await q.run(sql`
        update tasks set lease_expires_at = ${expiresAt}
        where id = ${task.id} and state = 'leased' and fencing_token = ${fencingToken}`);
      if (changed !== 1) throw new LenixError('STALE_FENCING_TOKEN', 'the task changed hands while heartbeating');
      await q.run(sql`update leases set expires_at = ${expiresAt} where id = ${lease.id}`);
      return { expiresAt, cancelled: false, agentId: lease.agentId };
    });
  } catch (err) {
    // A cancelled task tells its agent to stop rather than failing the heartbeat with a bare error.
    if (err instanceof LenixError && err.code === 'LEASE_ENDED') {
      const l = await db.selectFrom('leases').selectAll().where('id', '=', leaseId).executeTakeFirst();
      if (l?.outcome === 'cancelled') return { expiresAt: Number(l.expires_at), cancelled: true, agentId: l.agent_id };
    }
    throw err;
  }
}

/** One heartbeat waiting for its batch. */
interface Beat {
  readonly leaseId: number;
  readonly fencingToken: number;
  readonly agentTokenId: number;
  readonly expiresAt: number;
  readonly now: number;
  resolve(agentId: number | undefined): void;
  reject(err: unknown): void;
}

const batches = new WeakMap<Kysely<Database>, Beat[]>();

/**
 * PostgreSQL: the heartbeat of a current lease, extended only if every check of `checkLease` holds, with the
 * task and lease rows locked as they are checked; the agent's id if it was, `undefined` if not. The heartbeats
 * asked for in one turn of the event loop go as one statement (one round trip and one commit for all: under
 * load a hundred agents' heartbeats arrive together). If that statement fails (a deadlock with another
 * transaction, a lost connection), each is tried again on its own.
 */
function heartbeatInOneStatement(
  db: Kysely<Database>,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  expiresAt: number,
  now: number,
): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    let batch = batches.get(db);
    if (!batch) {
      batch = [];
      batches.set(db, batch);
      setImmediate(() => {
        batches.delete(db);
        void extendBatch(db, batch!);
      });
    }
    batch.push({ leaseId, fencingToken, agentTokenId, expiresAt, now, resolve, reject });
  });
}

async function extendBatch(db: Kysely<Database>, beats: readonly Beat[]): Promise<void> {
  let extended: Map<number, number>;
  try {
    extended = await extendLeases(db, beats);
  } catch (err) {
    if (beats.length === 1) return beats[0]!.reject(err);
    for (const beat of beats) await extendBatch(db, [beat]);
    return;
  }
  for (const [i, beat] of beats.entries()) beat.resolve(extended.get(i + 1));
}

/**
 * Extend the leases that pass their checks; the agent's id of each by its place in `beats` (from 1). Each
 * lease is read by its id and its task by the lease's, behind a fence (`offset 0`) that keeps the task's
 * checks out of its look-up: with them, PostgreSQL read the task through the index of leased tasks, which the
 * statistics take for small and which holds every lease's dead entries between two vacuums (~1,600 entries
 * for one task in the benchmark). The task, then the lease, is locked as a completion locks them, in the
 * order of the lease ids, the same in every batch.
 */
async function extendLeases(db: Kysely<Database>, beats: readonly Beat[]): Promise<Map<number, number>> {
  const order = beats.map((_, i) => i).sort((x, y) => beats[x]!.leaseId - beats[y]!.leaseId);
  const column = <T>(f: (b: Beat) => T) => order.map((i) => f(beats[i]!));
  const rows = await withStatements(db, (q) =>
    q.rows(sql<{ n: number; agent_id: number }>`
      with held as (
        select r.n, r.expires_at, h.id, h.agent_id, h.task_id
        from unnest(${column((b) => b.leaseId)}::integer[], ${column((b) => b.fencingToken)}::bigint[],
          ${column((b) => b.agentTokenId)}::integer[], ${column((b) => b.expiresAt)}::bigint[],
          ${column((b) => b.now)}::bigint[]) with ordinality as r(lease_id, fencing_token, token_id, expires_at, now, n)
        cross join lateral (
          select leases.id, leases.agent_id, leases.task_id from leases
          join agents on agents.id = leases.agent_id
          cross join lateral (
            select lease_id, fencing_token, state, lease_expires_at from tasks where tasks.id = leases.task_id
            offset 0 for update
          ) as t
          where leases.id = r.lease_id and agents.token_id = r.token_id
            and leases.fencing_token = r.fencing_token and leases.ended_at is null
            and t.lease_id = leases.id and t.fencing_token = r.fencing_token and t.state = 'leased'
            and (t.lease_expires_at is null or t.lease_expires_at >= r.now)
          for update of leases
        ) as h
      ), task as (
        update tasks set lease_expires_at = held.expires_at from held where tasks.id = held.task_id
        returning held.n, held.id, held.agent_id, held.expires_at
      ), lease as (
        update leases set expires_at = task.expires_at from task where leases.id = task.id
        returning task.n, task.agent_id
      )
      select n::integer as n, agent_id from lease`),
  );
  return new Map(rows.map((r) => [order[r.n - 1]! + 1, r.agent_id]));
}
