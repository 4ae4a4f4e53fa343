import { sql, type Selectable } from 'kysely';
import { LenixError } from '../../core/errors.js';
import type { LeaseRecord, TaskRecord } from '../records.js';
import { toLease, toTask } from '../rows.js';
import type { Database } from '../schema.js';
import type { Statements } from '../statements.js';

/** A task row with its lease's columns beside it (`LEASE_COLUMNS`, prefixed `l_`). */
type LeaseRow = Selectable<Database['tasks']> & {
  l_id: number;
  l_task_id: number;
  l_agent_id: number;
  l_fencing_token: number;
  l_acquired_at: number;
  l_expires_at: number;
  l_ended_at: number | null;
  l_outcome: string | null;
};

/** The lease's columns of a `LeaseRow`, selected from a table or CTE named `leases`. */
const LEASE_COLUMNS = sql`leases.id as l_id, leases.task_id as l_task_id, leases.agent_id as l_agent_id,
  leases.fencing_token as l_fencing_token, leases.acquired_at as l_acquired_at,
  leases.expires_at as l_expires_at, leases.ended_at as l_ended_at, leases.outcome as l_outcome`;

function fromLeaseRow(row: LeaseRow): { lease: LeaseRecord; task: TaskRecord } {
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
  return { lease, task: toTask(row) };
}

/** Check that a message belongs to the task's current lease: the right agent, the current fencing token, in time. */
export async function checkLease(
  q: Statements,
  leaseId: number,
  fencingToken: number,
  agentTokenId: number,
  now: number,
): Promise<{ lease: LeaseRecord; task: TaskRecord }> {
  const [row] = await q.rows(sql<LeaseRow & { a_token_id: number }>`
    select tasks.*, ${LEASE_COLUMNS}, agents.token_id as a_token_id
    from leases
    join agents on agents.id = leases.agent_id
    join tasks on tasks.id = leases.task_id
    where leases.id = ${leaseId}`);
  if (!row) throw new LenixError('LEASE_NOT_FOUND', `lease ${leaseId} does not exist`);
  if (row.a_token_id !== agentTokenId) throw new LenixError('FORBIDDEN', `lease ${leaseId} belongs to another agent`);
  const { lease, task } = fromLeaseRow(row);
  assertCurrent(lease, task, fencingToken, now);
  return { lease, task };
}

function assertCurrent(lease: LeaseRecord, task: TaskRecord, fencingToken: number, now: number): void {
  if (task.fencingToken !== fencingToken || task.leaseId !== lease.id || lease.fencingToken !== fencingToken) {
    throw new LenixError('STALE_FENCING_TOKEN', `fencing token ${fencingToken} is not current for task ${task.id}`);
  }
  if (lease.endedAt !== null || task.state !== 'leased') {
    throw new LenixError('LEASE_ENDED', `lease ${lease.id} already ended (${lease.outcome ?? task.state})`);
  }
  if (lease.expiresAt < now) {
    throw new LenixError('LEASE_EXPIRED', `lease ${lease.id} expired`);
  }
}
