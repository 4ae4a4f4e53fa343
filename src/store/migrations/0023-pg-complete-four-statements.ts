import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0023 (PostgreSQL only): `lenix_complete` (migration 0022) in fewer statements. The database's
 * CPU is the largest share of a scheduler cycle on PostgreSQL (docs/benchmarks.md), and a profile of it is flat:
 * executor start-up, plan-cache checks and buffer look-ups, paid once for each statement. A failed task's
 * completion ran eleven statements inside the function; it now runs four:
 *
 * - the lease, its task, its agent's token and its build are read and locked in one statement (four before);
 * - the task's update, its lease's end and the task's event go as one statement (three before);
 * - the build's tasks are counted and its first failed task read in one pass (two before);
 * - the build's update and its event go as one statement (two before);
 * - the lease's expiry is read from the lease, and the task keeps no copy of it (migration 0024).
 *
 * The rules are those of 0021 and 0022, which the storage conformance suite checks on both dialects. The
 * function is replaced whole: a released migration stays as it was.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
create or replace function lenix_complete(
  p_lease integer, p_fencing bigint, p_token integer, p_now bigint,
  p_outcome text, p_code text, p_reason text,
  p_result text,
  p_follow text, p_follow_role text, p_follow_kind text, p_follow_arches text[], p_follow_code text,
  p_follow_reason text,
  p_build_kinds text[],
  out error_code text, out error_message text, out build_state text, out queued_new integer, out task json,
  out batch_id integer
) language plpgsql as $fn$
declare
  l leases%rowtype;
  t tasks%rowtype;
  b builds%rowtype;
  r record;
  v_state text;
  v_code text;
  v_reason text;
  v_finished boolean;
  v_any_cancelled boolean;
  v_any_failed boolean;
  v_all_succeeded boolean;
  v_any_running boolean;
  v_any_queued boolean;
  v_srpm_done boolean;
  v_count integer;
  v_has_failed boolean;
  v_failed_arch text;
  v_failed_code text;
  v_failed_reason text;
  v_done boolean;
  v_stage_role text;
  v_stage_kind text;
  v_arch text;
begin
  queued_new := 0;
  -- The lease, its task, its agent's token and the task's build, in one statement; the task, the lease and
  -- the build are locked in that order, as a lease and a heartbeat lock them.
  select tk as t, leases as l, agents.token_id, bd as b into r
  from leases join tasks tk on tk.id = leases.task_id join agents on agents.id = leases.agent_id
  join builds bd on bd.id = tk.build_id
  where leases.id = p_lease
  for update of tk, leases, bd;
  if not found then
    error_code := 'LEASE_NOT_FOUND';
    error_message := format('lease %s does not exist', p_lease);
    return;
  end if;
  t := r.t; l := r.l; b := r.b;
  if r.token_id is distinct from p_token then
    error_code := 'FORBIDDEN';
    error_message := format('lease %s belongs to another agent', p_lease);
    return;
  end if;
  if t.fencing_token <> p_fencing or t.lease_id is distinct from l.id or l.fencing_token <> p_fencing then
    error_code := 'STALE_FENCING_TOKEN';
    error_message := format('fencing token %s is not current for task %s', p_fencing, t.id);
    return;
  end if;
  if l.ended_at is not null or t.state <> 'leased' then
    error_code := 'LEASE_ENDED';
    error_message := format('lease %s already ended (%s)', l.id, coalesce(l.outcome, t.state));
    return;
  end if;
  if l.expires_at < p_now then
    error_code := 'LEASE_EXPIRED';
    error_message := format('lease %s expired', l.id);
    return;
  end if;
  batch_id := b.batch_id;

  -- taskEnd (scheduler/task-state.ts)
  if p_outcome = 'success' then
    if p_follow = 'fail-build' then
      v_state := 'failed'; v_code := p_follow_code; v_reason := p_follow_reason;
    else
      v_state := 'succeeded'; v_code := null; v_reason := null;
    end if;
  elsif p_outcome = 'failure' then
    v_state := 'failed'; v_code := p_code; v_reason := p_reason;
  elsif t.attempts >= t.max_attempts then
    v_state := 'failed'; v_code := p_code;
    v_reason := format('%s (gave up after %s attempt%s)', p_reason, t.attempts,
      case when t.attempts = 1 then '' else 's' end);
  else
    v_state := 'queued'; v_code := p_code; v_reason := p_reason;
  end if;
  v_finished := v_state <> 'queued';

  -- The task, its lease and its event in one statement.
  with ended as (
    update leases set ended_at = p_now, outcome = p_outcome where id = l.id
  ), logged as (
    insert into events (at, kind, build_id, task_id, data)
    values (p_now, 'task.' || v_state, t.build_id, t.id, json_build_object('code', v_code, 'reason', v_reason)::text)
  )
  update tasks set state = v_state, reason_code = v_code, reason = v_reason,
    result = coalesce(p_result, tasks.result), finished_at = case when v_finished then p_now end,
    lease_id = case when v_finished then tasks.lease_id end,
    agent_id = case when v_finished then tasks.agent_id end
  where id = t.id
  returning * into t;

  if v_state = 'succeeded' and p_follow = 'fan-out' then
    foreach v_arch in array p_follow_arches loop
      perform lenix_enqueue(t.build_id, b.source_id, b.priority, t.max_attempts, p_follow_role, p_follow_kind,
        v_arch, p_now);
      queued_new := queued_new + 1;
    end loop;
    insert into events (at, kind, build_id, task_id, data)
    values (p_now, 'build.fanned-out', t.build_id, t.id, json_build_object('arches', p_follow_arches)::text);
  end if;

  if t.kind = any (p_build_kinds) then
    -- settleBuild (queue/settle.ts) with buildStateFromTasks (scheduler/task-state.ts)
    -- The first failed task (by id) is read in the same pass.
    select count(*), coalesce(bool_or(state = 'cancelled'), false), coalesce(bool_or(state = 'failed'), false),
      coalesce(bool_and(state = 'succeeded'), false), coalesce(bool_or(state in ('leased', 'succeeded')), false),
      coalesce(bool_or(kind = 'srpm' and state = 'succeeded'), false) and coalesce(bool_or(kind <> 'srpm'), false),
      coalesce(bool_or(state = 'queued'), false),
      (array_agg(arch order by id) filter (where state = 'failed'))[1],
      (array_agg(reason_code order by id) filter (where state = 'failed'))[1],
      (array_agg(reason order by id) filter (where state = 'failed'))[1]
    into v_count, v_any_cancelled, v_any_failed, v_all_succeeded, v_any_running, v_srpm_done, v_any_queued,
      v_failed_arch, v_failed_code, v_failed_reason
    from tasks where build_id = t.build_id and kind = any (p_build_kinds);
    build_state := case
      when v_any_cancelled then 'cancelled'
      when v_any_failed then 'failed'
      when v_count > 0 and v_srpm_done and v_all_succeeded then 'succeeded'
      when v_any_running then 'running'
      else 'queued' end;
    v_has_failed := v_any_failed;
    v_done := build_state in ('succeeded', 'failed', 'cancelled');
    if build_state = 'failed' and v_any_queued then
      update tasks set state = 'cancelled', finished_at = p_now, reason_code = 'BUILD_FAILED',
        reason = 'another task of the build failed'
      where build_id = t.build_id and kind = any (p_build_kinds) and state = 'queued';
    end if;
    -- A build that stays queued or running as it was changes nothing: its row is left alone.
    if v_done or build_state is distinct from b.state then
      -- The build and, if it ended here, its event in one statement.
      with settled as (
        update builds set state = build_state, finished_at = case when v_done then p_now end,
          reason_code = case when v_has_failed then coalesce(v_failed_code, 'TASK_FAILED') end,
          reason = case when v_has_failed then v_failed_arch || ': ' || coalesce(v_failed_reason, 'task failed') end
        where id = t.build_id and state not in ('succeeded', 'failed', 'cancelled')
        returning id
      )
      insert into events (at, kind, build_id, task_id, data)
      select p_now, 'build.' || build_state, settled.id, null, '{}' from settled where v_done;
    end if;
  else
    build_state := b.state;
  end if;

  -- nextStage (scheduler/task-state.ts)
  if v_state = 'succeeded' then
    if t.kind = 'binary' and build_state = 'succeeded'
      and exists (select 1 from settings where key = 'signing_key') then
      v_stage_role := 'sign'; v_stage_kind := 'sign';
    elsif t.kind = 'sign' then
      v_stage_role := 'test'; v_stage_kind := 'test';
    end if;
    if v_stage_kind is not null then
      perform lenix_enqueue(t.build_id, b.source_id, b.priority, t.max_attempts, v_stage_role, v_stage_kind,
        'any', p_now);
      queued_new := queued_new + 1;
      insert into events (at, kind, build_id, task_id, data)
      values (p_now, 'build.' || v_stage_kind || '-queued', t.build_id, t.id, '{}');
    end if;
  end if;
  task := row_to_json(t);
end
$fn$`.execute(db);
}
