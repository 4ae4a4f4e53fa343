import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0021 (PostgreSQL only): the end of a lease as one server-side function, `lenix_complete`, so a
 * completion is one round trip where the transaction of queue/complete.ts takes ten (begin, the lease check,
 * the task, the lease, its event, the build's tasks, the build, the build's event, commit), each costing the
 * server ~65 µs in the driver and PostgreSQL a wake-up and a protocol exchange (docs/benchmarks.md: a
 * scheduler cycle on PostgreSQL cost the server 1.25 ms of CPU against 0.39 ms on SQLite).
 *
 * It applies the same rules as the TypeScript path, which SQLite runs (queue/complete.ts, settle.ts,
 * enqueue.ts; scheduler/task-state.ts and fair-share.ts), and the storage conformance suite runs the same
 * tests against both. The caller passes what TypeScript decides before the database is read (the outcome, the
 * report parsed by the task's kind, the follow-up, the build kinds); the function decides what needs the rows.
 *
 * It also takes the build's row lock before it reads the build's other tasks, after its own task's and
 * lease's: two tasks of one build ending at once otherwise each read the other as still leased under READ
 * COMMITTED, and the build stayed `running` after both succeeded. Task before build is the order a lease, an
 * expiry and a cancellation take them in too.
 *
 * A refused completion (no such lease, another agent's, a stale fencing token, an ended or expired lease)
 * changes nothing and answers the reason's code and message, as `checkLease` words them.
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
  out error_code text, out error_message text, out build_state text, out queued_new integer, out task json
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
  select * into l from leases where id = p_lease;
  if not found then
    error_code := 'LEASE_NOT_FOUND';
    error_message := format('lease %s does not exist', p_lease);
    return;
  end if;
  select * into t from tasks where id = l.task_id for update;
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
      coalesce(bool_or(kind = 'srpm' and state = 'succeeded'), false) and coalesce(bool_or(kind <> 'srpm'), false)
    into v_count, v_any_cancelled, v_any_failed, v_all_succeeded, v_any_running, v_srpm_done
    from tasks where build_id = t.build_id and kind = any (p_build_kinds);
    build_state := case
      when v_any_cancelled then 'cancelled'
      when v_any_failed then 'failed'
      when v_count > 0 and v_srpm_done and v_all_succeeded then 'succeeded'
      when v_any_running then 'running'
      else 'queued' end;
    select arch, reason_code, reason into v_failed_arch, v_failed_code, v_failed_reason from tasks
    where build_id = t.build_id and kind = any (p_build_kinds) and state = 'failed' order by id limit 1;
    v_has_failed := found;
    v_done := build_state in ('succeeded', 'failed', 'cancelled');
    if build_state = 'failed' then
      update tasks set state = 'cancelled', finished_at = p_now, reason_code = 'BUILD_FAILED',
        reason = 'another task of the build failed'
      where build_id = t.build_id and kind = any (p_build_kinds) and state = 'queued';
    end if;
    update builds set state = build_state, finished_at = case when v_done then p_now end,
      reason_code = case when v_has_failed then coalesce(v_failed_code, 'TASK_FAILED') end,
      reason = case when v_has_failed then v_failed_arch || ': ' || coalesce(v_failed_reason, 'task failed') end
    where id = t.build_id and state not in ('succeeded', 'failed', 'cancelled');
    get diagnostics v_changed = row_count;
    if v_changed = 1 and v_done then
      insert into events (at, kind, build_id, task_id, data)
      values (p_now, 'build.' || build_state, t.build_id, null, '{}');
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

  // enqueueTasks (queue/enqueue.ts) for one arch, at its fair-share virtual start (scheduler/fair-share.ts).
  await sql`
create or replace function lenix_enqueue(
  p_build integer, p_source integer, p_priority integer, p_max_attempts integer, p_role text, p_kind text,
  p_arch text, p_now bigint
) returns integer language plpgsql as $fn$
declare
  v_min bigint := (select min(vstart) from tasks where role = p_role and state = 'queued');
  v_max bigint := (select max(vstart) from tasks where role = p_role);
  v_last bigint := (select max(vstart) from tasks where source_id = p_source and role = p_role);
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
