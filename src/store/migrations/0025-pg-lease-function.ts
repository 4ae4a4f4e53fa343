import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Migration 0025 (PostgreSQL only): the lease as a function, and a completion that brings the agent's next
 * task in the same call.
 *
 * `lenix_lease` is the one-statement lease that queue/lease.ts sent as text (the candidate chosen and locked,
 * `for update skip locked`; the lease inserted; the task and, if it was queued, its build updated), now kept in
 * the database so that a completion can run it too. It answers the task, the lease and the build as the
 * statement left them as JSON rows, with the build's source name and commit beside; `p_skip_build` keeps one
 * build's tasks out.
 *
 * `lenix_complete_and_lease` runs `lenix_complete` and, if the completion was accepted, `lenix_lease` for the
 * agent in the same transaction: a cycle of the scheduler is then two calls of the database rather than three,
 * one commit fewer. The next task is never one of the completed task's build: what a completion queues
 * (the build's next stage) may be leased only after its statement is in the ledger, which the server records
 * once the call returns (a lease before it would be given back). The lease runs in a block of its own, so that
 * whatever goes wrong in it (reported as `next_error`) undoes the lease only, never the completion.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
create or replace function lenix_lease(
  p_agent integer, p_role text, p_arches text[], p_now bigint, p_lease_ms bigint, p_skip_build integer,
  out o_task json, out o_lease json, out o_build json, out o_source_name text, out o_commit_sha text,
  out o_commit_tree text, out o_commit_committed_at bigint, out o_commit_subject text
) language plpgsql as $fn$
begin
  with candidate as (
    select id, fencing_token from tasks
    where state = 'queued' and role = p_role and arch = any (p_arches) and build_id is distinct from p_skip_build
    order by priority desc, vstart, id
    limit 1 for update skip locked
  ), granted as (
    insert into leases (task_id, agent_id, fencing_token, acquired_at, expires_at)
    select id, p_agent, fencing_token + 1, p_now, p_now + p_lease_ms from candidate
    returning *
  ), taken as (
    update tasks set state = 'leased', fencing_token = granted.fencing_token, attempts = tasks.attempts + 1,
      lease_id = granted.id, agent_id = granted.agent_id, started_at = coalesce(tasks.started_at, p_now)
    from granted where tasks.id = granted.task_id
    returning tasks.*
  ), started as (
    update builds set state = 'running', started_at = coalesce(builds.started_at, p_now)
    from taken where builds.id = taken.build_id and builds.state = 'queued'
    returning builds.*
  )
  -- A statement's parts all see the rows as they were when it began: the build as the lease left it is the
  -- updated row if there is one.
  select row_to_json(taken), row_to_json(granted), coalesce(row_to_json(started), row_to_json(bd)), sources.name,
    commits.sha, commits.tree, commits.committed_at, commits.subject
  into o_task, o_lease, o_build, o_source_name, o_commit_sha, o_commit_tree, o_commit_committed_at,
    o_commit_subject
  from taken join granted on granted.task_id = taken.id
  join builds bd on bd.id = taken.build_id
  join sources on sources.id = bd.source_id
  join commits on commits.id = bd.commit_id
  left join started on started.id = bd.id;
end
$fn$`.execute(db);

  await sql`
create or replace function lenix_complete_and_lease(
  p_lease integer, p_fencing bigint, p_token integer, p_now bigint,
  p_outcome text, p_code text, p_reason text,
  p_result text,
  p_follow text, p_follow_role text, p_follow_kind text, p_follow_arches text[], p_follow_code text,
  p_follow_reason text,
  p_build_kinds text[],
  p_agent integer, p_role text, p_arches text[], p_lease_ms bigint,
  out error_code text, out error_message text, out build_state text, out queued_new integer, out task json,
  out batch_id integer,
  out o_task json, out o_lease json, out o_build json, out o_source_name text, out o_commit_sha text,
  out o_commit_tree text, out o_commit_committed_at bigint, out o_commit_subject text, out next_error text
) language plpgsql as $fn$
declare
  c record;
  n record;
begin
  select * into c from lenix_complete(p_lease, p_fencing, p_token, p_now, p_outcome, p_code, p_reason, p_result,
    p_follow, p_follow_role, p_follow_kind, p_follow_arches, p_follow_code, p_follow_reason, p_build_kinds);
  error_code := c.error_code;
  error_message := c.error_message;
  build_state := c.build_state;
  queued_new := c.queued_new;
  task := c.task;
  batch_id := c.batch_id;
  if c.error_code is not null then
    return;
  end if;
  begin
    select * into n from lenix_lease(p_agent, p_role, p_arches, p_now, p_lease_ms, (c.task ->> 'build_id')::integer);
    o_task := n.o_task;
    o_lease := n.o_lease;
    o_build := n.o_build;
    o_source_name := n.o_source_name;
    o_commit_sha := n.o_commit_sha;
    o_commit_tree := n.o_commit_tree;
    o_commit_committed_at := n.o_commit_committed_at;
    o_commit_subject := n.o_commit_subject;
  exception when others then
    next_error := sqlerrm;
  end;
end
$fn$`.execute(db);
}
