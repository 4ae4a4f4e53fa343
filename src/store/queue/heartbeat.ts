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
      const { lease } = await checkLease(q, leaseId, fencingToken, agentTokenId, now);
      const changed = await q.run(sql`
        update leases set expires_at = ${expiresAt} where id = ${lease.id} and ended_at is null`);
      if (changed !== 1) throw new LenixError('LEASE_ENDED', `lease ${lease.id} ended while heartbeating`);
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
 * lease row locked as it is checked (every end of a lease writes that row, so a lease found open stays open
 * until the statement commits); the agent's id if it was, `undefined` if not. The heartbeats
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

/** The most heartbeats one statement extends; a larger batch goes as several. */
const MAX_ROWS = 128;
const PADDING = { leaseId: 0, fencingToken: 0, agentTokenId: 0, expiresAt: 0, now: 0 };

/**
 * Extend the leases that pass their checks; the agent's id of each by its place in `beats` (from 1). Only
 * the lease is written: its expiry is in no index, so the new version stays on its page (PostgreSQL's "HOT"
 * update, no index entry added). Its task is read, not locked, to see that it is still held by this lease:
 * a completion, cancel, reap or give-back ends the lease in the same transaction as it changes the task, so
 * the lease's row lock orders each heartbeat wholly before or after such an end. The batch lists the leases
 * in the order of their ids.
 *
 * The heartbeats are a `values` list of a power-of-two length, not arrays: given arrays, PostgreSQL cannot
 * know their length in the prepared statement's generic plan, guesses it, and found that plan dearer than
 * one made for the values at hand, so it planned the statement again on every call (0.3 ms a batch, more
 * than running it). With a list, the generic plan counts the rows it will get, and is kept. That the lease
 * is open is asked as `coalesce(ended_at, -1) = -1`: asked as `ended_at is null`, the planner may read the
 * leases through the reaper's index of open leases (`leases_open`), which between two vacuums holds an
 * entry for every lease since (3,700 entries read for 8 heartbeats, seen in the benchmark), rather than
 * each lease by its id.
 */
async function extendLeases(db: Kysely<Database>, beats: readonly Beat[]): Promise<Map<number, number>> {
  const order = beats.map((_, i) => i).sort((x, y) => beats[x]!.leaseId - beats[y]!.leaseId);
  const extended = new Map<number, number>();
  for (let at = 0; at < order.length; at += MAX_ROWS) {
    const chunk = order.slice(at, at + MAX_ROWS);
    // As many rows as the next power of two, so that a text serves every batch of its size class; the padding
    // rows name lease 0, which no lease has (ids start at 1).
    const size = 2 ** Math.ceil(Math.log2(chunk.length));
    const rows = Array.from({ length: size }, (_, k) => {
      const i = chunk[k];
      const b = i === undefined ? PADDING : beats[i]!;
      return sql`(${i === undefined ? 0 : i + 1}::integer, ${b.leaseId}::integer, ${b.fencingToken}::bigint,
        ${b.agentTokenId}::integer, ${b.expiresAt}::bigint, ${b.now}::bigint)`;
    });
    const found = await withStatements(db, (q) =>
      q.rows(sql<{ n: number; agent_id: number }>`
        update leases set expires_at = r.expires_at
        from (values ${sql.join(rows)}) as r(n, lease_id, fencing_token, token_id, expires_at, now), agents, tasks
        where leases.id = r.lease_id and agents.id = leases.agent_id and agents.token_id = r.token_id
          and leases.fencing_token = r.fencing_token and coalesce(leases.ended_at, -1) = -1
          and leases.expires_at >= r.now
          and tasks.id = leases.task_id and tasks.lease_id = leases.id and tasks.fencing_token = r.fencing_token
          and tasks.state = 'leased'
        returning r.n, leases.agent_id`),
    );
    for (const r of found) extended.set(r.n, r.agent_id);
  }
  return extended;
}
