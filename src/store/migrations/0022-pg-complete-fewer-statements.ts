import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0022 (PostgreSQL only): `lenix_complete` (migration 0021) runs only the statements a completion
 * needs. Under load on PostgreSQL the database's own CPU was the largest share of a scheduler cycle
 * (docs/benchmarks.md), and a completion the costliest statement in it:
 *
 * - the lease's task is found and locked in one statement (it took two: the lease, then its task);
 * - the build's failed task is looked for only when the build has one, and its queued tasks are cancelled only
 *   when it has some: with stale statistics PostgreSQL answered that update by intersecting the build's index
 *   with the whole queue's (every queued task of the role, thousands of entries, each time);
 * - a build that stays queued or running as it was is not written again (a binary task of a multi-arch build
 *   ending while the others run);
 * - the build's batch comes back with the answer (it was read beside the call, from the task's JSON);
 * - `lenix_enqueue` reads its virtual clock's bounds as the first entries of their indexes: as min() and max(),
 *   with the statistics stale, PostgreSQL read every task of the role three times for each task it queued
 *   (1.2 ms a task with 2,200 tasks queued).
 *
 * The rules are those of 0021, which the storage conformance suite checks on both dialects.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  // The answer gains a column, which `create or replace` cannot do.
  await sql`drop function lenix_complete(integer, bigint, integer, bigint, text, text, text, text, text, text, text,
    text[], text, text, text[])`.execute(db);
  await sql`
create or replace function lenix_enqueue(
  p_build integer, p_source integer, p_priority integer, p_max_attempts integer, p_role text, p_kind text,
  p_arch text, p_now bigint
) returns integer language plpgsql as $fn$
declare
  v_min bigint := (select vstart from tasks where role = p_role and state = 'queued' order by vstart limit 1);
  v_max bigint := (select vstart from tasks where role = p_role order by vstart desc limit 1);
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
  v_token integer;
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
  v_changed integer;
begin
  queued_new := 0;
  select * into t from tasks where id = (select task_id from leases where id = p_lease) for update;
  if not found then
    error_code := 'LEASE_NOT_FOUND';
    error_message := format('lease %s does not exist', p_lease);
    return;
  end if;
  select * into l from leases where id = p_lease for update;
  select token_id into v_token from agents where id = l.agent_id;
  if v_token is distinct from p_token then
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
  if t.lease_expires_at is not null and t.lease_expires_at < p_now then
    error_code := 'LEASE_EXPIRED';
    error_message := format('lease %s expired', l.id);
    return;
  end if;
  select * into b from builds where id = t.build_id for update;
  if not found then
    error_code := 'BUILD_NOT_FOUND';
    error_message := format('build %s vanished', t.build_id);
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

  update tasks set state = v_state, reason_code = v_code, reason = v_reason,
    result = coalesce(p_result, tasks.result), finished_at = case when v_finished then p_now end,
    lease_expires_at = null,
    lease_id = case when v_finished then tasks.lease_id end,
    agent_id = case when v_finished then tasks.agent_id end
  where id = t.id
  returning * into t;
  update leases set ended_at = p_now, outcome = p_outcome where id = l.id;
  insert into events (at, kind, build_id, task_id, data)
  values (p_now, 'task.' || v_state, t.build_id, t.id, json_build_object('code', v_code, 'reason', v_reason)::text);

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
    select count(*), coalesce(bool_or(state = 'cancelled'), false), coalesce(bool_or(state = 'failed'), false),
      coalesce(bool_and(state = 'succeeded'), false), coalesce(bool_or(state in ('leased', 'succeeded')), false),
      coalesce(bool_or(kind = 'srpm' and state = 'succeeded'), false) and coalesce(bool_or(kind <> 'srpm'), false),
      coalesce(bool_or(state = 'queued'), false)
    into v_count, v_any_cancelled, v_any_failed, v_all_succeeded, v_any_running, v_srpm_done, v_any_queued
    from tasks where build_id = t.build_id and kind = any (p_build_kinds);
    build_state := case
      when v_any_cancelled then 'cancelled'
      when v_any_failed then 'failed'
      when v_count > 0 and v_srpm_done and v_all_succeeded then 'succeeded'
      when v_any_running then 'running'
      else 'queued' end;
    v_has_failed := false;
    if v_any_failed then
      select arch, reason_code, reason into v_failed_arch, v_failed_code, v_failed_reason from tasks
      where build_id = t.build_id and kind = any (p_build_kinds) and state = 'failed' order by id limit 1;
      v_has_failed := found;
    end if;
    v_done := build_state in ('succeeded', 'failed', 'cancelled');
    if build_state = 'failed' and v_any_queued then
      update tasks set state = 'cancelled', finished_at = p_now, reason_code = 'BUILD_FAILED',
        reason = 'another task of the build failed'
      where build_id = t.build_id and kind = any (p_build_kinds) and state = 'queued';
    end if;
    -- A build that stays queued or running as it was changes nothing: its row is left alone.
    if v_done or build_state is distinct from b.state then
      update builds set state = build_state, finished_at = case when v_done then p_now end,
        reason_code = case when v_has_failed then coalesce(v_failed_code, 'TASK_FAILED') end,
        reason = case when v_has_failed then v_failed_arch || ': ' || coalesce(v_failed_reason, 'task failed') end
      where id = t.build_id and state not in ('succeeded', 'failed', 'cancelled');
      get diagnostics v_changed = row_count;
      if v_changed = 1 and v_done then
        insert into events (at, kind, build_id, task_id, data)
        values (p_now, 'build.' || build_state, t.build_id, null, '{}');
      end if;
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
