import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0026: the role's largest virtual start is read through an index of `(role, vstart + 0)` instead of
 * `(role, vstart)`. Queueing a task reads three bounds of the fair-share clock (queue/enqueue.ts), among them a
 * source's own last virtual start, which `tasks_source_vclock (source_id, role, vstart)` answers in one probe.
 * PostgreSQL answered it through `(role, vstart)` instead, walking the role's tasks from the newest back and
 * filtering by source: its estimates take a source's tasks to be spread evenly, so the walk looks a few entries
 * long, but it runs through every task queued since the source's last one (2,856 buffers and 0.54 ms a task
 * while the benchmark seeds twenty sources one after another; the same plan after an analyze). Ordered by the expression,
 * the index serves only the role's own bound, which is written to ask for it.
 *
 * `lenix_enqueue` (PostgreSQL, migration 0022) asks for the same bounds and is replaced to match.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await sql`drop index tasks_vstart`.execute(db);
  await sql`create index tasks_vstart on tasks (role, (vstart + 0))`.execute(db);
  if (dialect !== 'postgres') return;
  await sql`
create or replace function lenix_enqueue(
  p_build integer, p_source integer, p_priority integer, p_max_attempts integer, p_role text, p_kind text,
  p_arch text, p_now bigint
) returns integer language plpgsql as $fn$
declare
  v_min bigint := (select vstart from tasks where role = p_role and state = 'queued' order by vstart limit 1);
  v_max bigint := (select vstart from tasks where role = p_role order by vstart + 0 desc limit 1);
  v_last bigint := (select vstart from tasks where source_id = p_source and role = p_role
    order by vstart desc limit 1);
  v_clock bigint := coalesce(v_min, v_max + 1, 0);
  v_id integer;
begin
  insert into tasks (build_id, source_id, kind, role, arch, state, priority, vstart, attempts, max_attempts,
    fencing_token, cancel_requested, created_at, log_size, subject)
  values (p_build, p_source, p_kind, p_role, p_arch, 'queued', p_priority,
    case when v_last is null then v_clock else greatest(v_clock, v_last + 1) end, 0, p_max_attempts,
    0, 0, p_now, 0, null)
  returning id into v_id;
  return v_id;
end
$fn$`.execute(db);
}
