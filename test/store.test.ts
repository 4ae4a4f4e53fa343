import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LenixError } from '../src/core/errors.js';
import { recordEvent } from '../src/store/events.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { sql } from 'kysely';
import { inTransaction } from '../src/store/statements.js';
import type { AgentRecord } from '../src/store/records.js';
import type { Store } from '../src/store/store.js';
import type { FollowUp, Outcome } from '../src/scheduler/task-state.js';
import { BUILDROOT, rejectsWith, storeSuite } from './support/store-suite.js';

/**
 * The storage conformance suite, part one: sources, builds and the task queue (leases, fencing, expiry,
 * attempts, fair share), one set of behaviours run against SQLite and PostgreSQL (style.md §3).
 */
storeSuite('store conformance', ({ fresh, clock, seed, agent }) => {
  test('migrations are idempotent', async () => {
    const store = await fresh();
    assert.deepEqual(await migrateToLatest(store.db, store.dialect), []);
  });

  test('a source name is unique; commits are recorded once', async () => {
    const store = await fresh();
    const { source, commit } = await seed(store);
    await rejectsWith(
      store.sources.add({ name: 'hello', url: '/x', branch: 'main', watch: false }, clock.now()),
      'SOURCE_EXISTS',
    );
    const again = await store.sources.recordCommit(
      source.id,
      { sha: 'a'.repeat(40), tree: 'b'.repeat(40), committedAt: 1, subject: 'x' },
      clock.now(),
    );
    assert.equal(again.id, commit.id);
    assert.equal((await store.sources.listCommits(source.id, 10)).length, 1);
  });

  test('a new build has one queued SRPM task', async () => {
    const store = await fresh();
    const { builds } = await seed(store);
    const { build, srpmTask } = builds[0]!;
    assert.equal(build.state, 'queued');
    assert.equal(srpmTask.kind, 'srpm');
    assert.equal(srpmTask.arch, 'src');
    assert.equal(srpmTask.state, 'queued');
    assert.deepEqual(
      (await store.tasks.listOfBuild(build.id)).map((t) => t.id),
      [srpmTask.id],
    );
  });

  test('a lease hands out a task once, with a fencing token and an expiry', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store);
    const grant = await store.tasks.lease(a, 30_000, clock.now());
    assert.ok(grant);
    assert.equal(grant.task.state, 'leased');
    assert.equal(grant.lease.fencingToken, 1);
    assert.equal(grant.lease.expiresAt, clock.now() + 30_000);
    assert.equal(grant.task.attempts, 1);
    assert.equal(await store.tasks.lease(a, 30_000, clock.now()), null);
    assert.equal((await store.builds.get(grant.task.buildId))!.state, 'running');
    // The grant brings the build as the lease left it, the same record a read of it gives.
    assert.deepEqual(grant.build, await store.builds.get(grant.task.buildId));
    assert.equal(grant.build.startedAt, clock.now());
  });

  test('an agent only gets tasks of its architectures', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store, 'arm', ['aarch64']);
    assert.equal(await store.tasks.lease(a, 30_000, clock.now()), null);
  });

  test('completion with a fan-out queues binary tasks in the same transaction', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store);
    const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
    const r = await store.tasks.complete(
      g.lease.id,
      1,
      a.tokenId,
      { kind: 'success' },
      BUILDROOT,
      { kind: 'fan-out', role: 'build', taskKind: 'binary', arches: ['x86_64', 'aarch64'] },
      clock.now(),
    );
    assert.equal(r.task.state, 'succeeded');
    assert.equal(r.queuedNew, 2);
    const tasks = await store.tasks.listOfBuild(g.task.buildId);
    assert.deepEqual(
      tasks.map((t) => [t.kind, t.arch, t.state]),
      [
        ['srpm', 'src', 'succeeded'],
        ['binary', 'x86_64', 'queued'],
        ['binary', 'aarch64', 'queued'],
      ],
    );
    assert.deepEqual(tasks[0]!.result, BUILDROOT);
    assert.equal(r.batchId, null);
    // A lease of an already running build brings it unchanged.
    clock.advance(5);
    const binary = (await store.tasks.lease(a, 30_000, clock.now()))!;
    assert.equal(binary.task.kind, 'binary');
    assert.deepEqual(binary.build, await store.builds.get(g.task.buildId));
    assert.equal(binary.build.startedAt, g.build.startedAt);
  });

  test('a completed lease cannot complete again', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store);
    const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
    await store.tasks.complete(g.lease.id, 1, a.tokenId, { kind: 'success' }, null, { kind: 'none' }, clock.now());
    await rejectsWith(
      store.tasks.complete(
        g.lease.id,
        1,
        a.tokenId,
        { kind: 'failure', code: 'BUILD_FAILED', reason: 'late' },
        null,
        { kind: 'none' },
        clock.now(),
      ),
      'LEASE_ENDED',
    );
    assert.equal((await store.tasks.get(g.task.id))!.state, 'succeeded');
  });

  test('an expired lease goes back to the queue and the old fencing token is refused', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store, 'a');
    const b = await agent(store, 'b');
    const first = (await store.tasks.lease(a, 1000, clock.now()))!;
    clock.advance(1001);
    const requeued = await store.tasks.reapExpired(clock.now());
    assert.deepEqual(
      requeued.map((t) => t.state),
      ['queued'],
    );
    const second = (await store.tasks.lease(b, 1000, clock.now()))!;
    assert.equal(second.task.id, first.task.id);
    assert.equal(second.lease.fencingToken, 2);
    assert.equal(second.task.attempts, 2);
    await rejectsWith(
      store.tasks.complete(first.lease.id, 1, a.tokenId, { kind: 'success' }, null, { kind: 'none' }, clock.now()),
      'STALE_FENCING_TOKEN',
    );
    await rejectsWith(store.tasks.heartbeat(first.lease.id, 1, a.tokenId, 1000, clock.now()), 'STALE_FENCING_TOKEN');
    await rejectsWith(
      store.logs
        .append(first.task.id, 0, Buffer.from('x'))
        .then(() => store.tasks.checkLease(first.lease.id, 1, a.tokenId, clock.now())),
      'STALE_FENCING_TOKEN',
    );
    const t = (await store.tasks.get(first.task.id))!;
    assert.equal(t.state, 'leased');
    assert.equal(t.leaseId, second.lease.id);
  });

  test("cancelling a build ends its task's open lease; an ended one keeps its outcome", async () => {
    const store = await fresh();
    const { builds } = await seed(store);
    const a = await agent(store, 'a');
    const b = await agent(store, 'b');
    const first = (await store.tasks.lease(a, 1000, clock.now()))!;
    clock.advance(1001);
    await store.tasks.reapExpired(clock.now());
    const second = (await store.tasks.lease(b, 1000, clock.now()))!;
    clock.advance(5);
    await store.builds.cancel(builds[0]!.build.id, 'not wanted', clock.now());
    const leases = await store.db
      .selectFrom('leases')
      .select(['id', 'ended_at', 'outcome'])
      .where('id', 'in', [first.lease.id, second.lease.id])
      .orderBy('id')
      .execute();
    assert.deepEqual(
      leases.map((l) => [l.id, Number(l.ended_at), l.outcome]),
      [
        [first.lease.id, clock.now() - 5, 'expired'],
        [second.lease.id, clock.now(), 'cancelled'],
      ],
    );
  });

  test('a lease given back (its inputs not ready) requeues the task without counting the attempt', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store, 'a');
    const first = (await store.tasks.lease(a, 30_000, clock.now()))!;
    assert.equal(await store.tasks.giveBack(first.lease.id, first.lease.fencingToken, clock.now()), true);
    assert.equal(await store.tasks.giveBack(first.lease.id, first.lease.fencingToken, clock.now()), false, 'once');
    const t = (await store.tasks.get(first.task.id))!;
    assert.deepEqual([t.state, t.attempts, t.leaseId], ['queued', 0, null]);
    await rejectsWith(
      store.tasks.complete(first.lease.id, 1, a.tokenId, { kind: 'success' }, null, { kind: 'none' }, clock.now()),
      'STALE_FENCING_TOKEN',
    );
    const again = (await store.tasks.lease(a, 30_000, clock.now()))!;
    assert.deepEqual([again.task.id, again.task.attempts, again.lease.fencingToken], [first.task.id, 1, 2]);
  });

  test('a heartbeat extends the current lease only: its agent, its fencing token, in time', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store, 'a');
    const b = await agent(store, 'b');
    const g = (await store.tasks.lease(a, 1000, clock.now()))!;
    const beat = (leaseId: number, fencing: number, tokenId: number) =>
      store.tasks.heartbeat(leaseId, fencing, tokenId, 5000, clock.now());
    clock.advance(500);
    const before = await store.tasks.get(g.task.id);
    assert.deepEqual(await beat(g.lease.id, 1, a.tokenId), {
      expiresAt: clock.now() + 5000,
      cancelled: false,
      agentId: a.id,
    });
    const extended = await store.tasks.checkLease(g.lease.id, 1, a.tokenId, clock.now());
    assert.equal(extended.lease.expiresAt, clock.now() + 5000);
    // The expiry is the lease's alone: a heartbeat leaves its task's row as it was.
    assert.deepEqual(extended.task, before);
    await rejectsWith(beat(g.lease.id, 1, b.tokenId), 'FORBIDDEN');
    await rejectsWith(beat(g.lease.id, 2, a.tokenId), 'STALE_FENCING_TOKEN');
    await rejectsWith(beat(g.lease.id + 1000, 1, a.tokenId), 'LEASE_NOT_FOUND');
    clock.advance(5001); // past the expiry, not yet reaped
    await rejectsWith(beat(g.lease.id, 1, a.tokenId), 'LEASE_EXPIRED');
    // The refused heartbeat did not extend it: at its old expiry the lease is still current, and unchanged.
    assert.equal(
      (await store.tasks.checkLease(g.lease.id, 1, a.tokenId, clock.now() - 1)).lease.expiresAt,
      clock.now() - 1,
    );
  });

  test('heartbeats sent together are each answered on their own (one statement on PostgreSQL)', async () => {
    const store = await fresh();
    await seed(store, 'x', 3);
    const a = await agent(store, 'a');
    const b = await agent(store, 'b');
    const [g1, g2, g3] = [
      (await store.tasks.lease(a, 1000, clock.now()))!,
      (await store.tasks.lease(b, 1000, clock.now()))!,
      (await store.tasks.lease(a, 1000, clock.now()))!,
    ];
    clock.advance(100);
    const beat = (leaseId: number, fencing: number, tokenId: number) =>
      store.tasks.heartbeat(leaseId, fencing, tokenId, 5000, clock.now());
    // All asked for in one turn: one batch on PostgreSQL, whatever each one's fate.
    const answers = await Promise.allSettled([
      beat(g1.lease.id, 1, a.tokenId),
      beat(g2.lease.id, 1, a.tokenId), // b's lease
      beat(g2.lease.id, 1, b.tokenId),
      beat(g2.lease.id, 1, b.tokenId), // the same heartbeat twice
      beat(g3.lease.id, 7, a.tokenId), // a stale fencing token
      beat(g3.lease.id + 1000, 1, a.tokenId),
    ]);
    const outcome = (r: PromiseSettledResult<{ agentId: number; expiresAt: number }>) =>
      r.status === 'fulfilled' ? [r.value.agentId, r.value.expiresAt] : (r.reason as LenixError).code;
    const extended = clock.now() + 5000;
    assert.deepEqual(answers.map(outcome), [
      [a.id, extended],
      'FORBIDDEN',
      [b.id, extended],
      [b.id, extended],
      'STALE_FENCING_TOKEN',
      'LEASE_NOT_FOUND',
    ]);
    for (const [g, tokenId, at] of [
      [g1, a.tokenId, extended],
      [g2, b.tokenId, extended],
      [g3, a.tokenId, g3.lease.expiresAt],
    ] as const) {
      const held = await store.tasks.checkLease(g.lease.id, 1, tokenId, clock.now());
      assert.equal(held.lease.expiresAt, at, `lease ${g.lease.id}`);
    }
  });

  test('a lease is refused to another agent token', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store, 'a');
    const b = await agent(store, 'b');
    const g = (await store.tasks.lease(a, 1000, clock.now()))!;
    await rejectsWith(store.tasks.checkLease(g.lease.id, 1, b.tokenId, clock.now()), 'FORBIDDEN');
  });

  test('attempts are counted; the last lost attempt fails the task with its reason kept', async () => {
    const store = await fresh();
    const { builds } = await seed(store);
    const a = await agent(store);
    for (let i = 0; i < 2; i++) {
      assert.ok(await store.tasks.lease(a, 1000, clock.now()));
      clock.advance(1001);
      await store.tasks.reapExpired(clock.now());
    }
    const t = (await store.tasks.get(builds[0]!.srpmTask.id))!;
    assert.equal(t.state, 'failed');
    assert.equal(t.reasonCode, 'LEASE_EXPIRED');
    assert.match(t.reason!, /gave up after 2 attempts/);
    const b = (await store.builds.get(t.buildId))!;
    assert.equal(b.state, 'failed');
    assert.equal(b.reasonCode, 'LEASE_EXPIRED');
  });

  test('an agent error retries; a build failure does not', async () => {
    const store = await fresh();
    await seed(store, 'one');
    const a = await agent(store);
    let g = (await store.tasks.lease(a, 1000, clock.now()))!;
    await store.tasks.complete(
      g.lease.id,
      1,
      a.tokenId,
      { kind: 'error', code: 'AGENT_ERROR', reason: 'disk full' },
      null,
      { kind: 'none' },
      clock.now(),
    );
    assert.equal((await store.tasks.get(g.task.id))!.state, 'queued');
    g = (await store.tasks.lease(a, 1000, clock.now()))!;
    await store.tasks.complete(
      g.lease.id,
      2,
      a.tokenId,
      { kind: 'failure', code: 'BUILD_FAILED', reason: 'rpmbuild exited with status 1' },
      null,
      { kind: 'none' },
      clock.now(),
    );
    const t = (await store.tasks.get(g.task.id))!;
    assert.equal(t.state, 'failed');
    assert.equal(t.reason, 'rpmbuild exited with status 1');
  });

  test("fair share: one queued task of a second source is served before the first source's backlog", async () => {
    const store = await fresh();
    const busy = await seed(store, 'busy', 500);
    const quiet = await seed(store, 'quiet', 1);
    const a = await agent(store);
    const served: number[] = [];
    for (let i = 0; i < 3; i++) served.push((await store.tasks.lease(a, 30_000, clock.now()))!.task.sourceId);
    assert.ok(served.includes(quiet.source.id), `quiet source not served in the first 3 leases: ${served.join(',')}`);
    assert.equal(served[0], busy.source.id);
  });

  test('fair share after the queue empties: the clock goes on from the largest virtual start, a source from its last', async () => {
    const store = await fresh();
    const a = await seed(store, 'early', 3);
    const builder = await agent(store);
    for (let i = 0; i < 3; i++)
      await leaseAndEnd(store, builder, { kind: 'failure', code: 'BUILD_FAILED', reason: 'x' });
    // The queue is empty; a newcomer queues three builds, then the early source one more.
    await seed(store, 'late', 3);
    const again = await store.builds.create(
      {
        sourceId: a.source.id,
        commitId: a.commit.id,
        ref: 'main',
        priority: 0,
        arches: ['x86_64'],
        specPath: 'early.spec',
        packageName: 'early',
        packageEvr: '1-2',
        createdBy: 'test',
        maxAttempts: 2,
      },
      clock.now(),
    );
    const served: number[] = [];
    for (let i = 0; i < 4; i++) served.push((await store.tasks.lease(builder, 30_000, clock.now()))!.task.buildId);
    // The newcomer starts where the early source's history ended, not at zero, so the early source's new build
    // comes second rather than after all three of the newcomer's.
    assert.equal(served[1], again.build.id, `served ${served.join(',')}`);
  });

  test('priority comes before fair share', async () => {
    const store = await fresh();
    await seed(store, 'low', 3);
    const src = await store.sources.add({ name: 'urgent', url: '/x', branch: 'main', watch: false }, clock.now());
    const c = await store.sources.recordCommit(
      src.id,
      { sha: 'c'.repeat(40), tree: 'd'.repeat(40), committedAt: 1, subject: 's' },
      clock.now(),
    );
    await store.builds.create(
      {
        sourceId: src.id,
        commitId: c.id,
        ref: 'main',
        priority: 10,
        arches: ['x86_64'],
        specPath: 'u.spec',
        packageName: 'u',
        packageEvr: '1-1',
        createdBy: 't',
        maxAttempts: 2,
      },
      clock.now(),
    );
    const a = await agent(store);
    assert.equal((await store.tasks.lease(a, 30_000, clock.now()))!.task.sourceId, src.id);
  });

  test('concurrent leases never hand one task to two agents', async () => {
    const store = await fresh();
    await seed(store, 'many', 10);
    const agents = await Promise.all(Array.from({ length: 20 }, (_, i) => agent(store, `c${i}`)));
    const grants = (await Promise.all(agents.map((a) => store.tasks.lease(a, 30_000, clock.now())))).filter(
      (g) => g !== null,
    );
    const ids = grants.map((g) => g!.task.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(ids.length, 10);
  });

  test('transactions asked for together stay independent: a failing one leaves no trace, the others commit', async () => {
    const store = await fresh();
    const { builds } = await seed(store);
    const buildId = builds[0]!.build.id;
    // Asked for in the same turn: on SQLite they share one commit (statements.ts), each in its own savepoint.
    const write = (kind: string, fail: boolean) =>
      inTransaction(store.db, async (q) => {
        await recordEvent(q, clock.now(), kind, buildId, null, {});
        if (fail) throw new Error(`${kind} failed`);
        return kind;
      });
    const outcomes = await Promise.allSettled([
      write('t.first', false),
      write('t.broken', true),
      write('t.last', false),
    ]);
    assert.deepEqual(
      outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
      ['t.first', 't.broken failed', 't.last'],
    );
    const kinds = (await store.builds.listEvents(buildId)).map((e) => e.kind).filter((k) => k.startsWith('t.'));
    assert.deepEqual(kinds, ['t.first', 't.last']);
  });

  test('a read asked for with writes sees what was committed before them, and the writes once they are', async () => {
    const store = await fresh();
    const { builds } = await seed(store);
    const buildId = builds[0]!.build.id;
    const cancel = inTransaction(store.db, (q) =>
      q.run(sql`update builds set state = 'cancelled', reason = 'by the test' where id = ${buildId}`),
    );
    // Asked for in the same turn: on SQLite it runs in the turn's group, before its writes (statements.ts); on
    // PostgreSQL it is an independent read, which may or may not see the write.
    const during = store.builds.get(buildId);
    assert.equal(await cancel, 1);
    if (store.dialect === 'sqlite') assert.equal((await during)?.state, 'queued');
    else assert.ok(['queued', 'cancelled'].includes(String((await during)?.state)));
    assert.equal((await store.builds.get(buildId))?.state, 'cancelled');
  });

  /** Lease the next task for `a` and end it; the grant and the completion's answer. */
  async function leaseAndEnd(
    store: Store,
    a: AgentRecord,
    outcome: Outcome,
    followUp: FollowUp = { kind: 'none' },
    report: unknown = null,
  ) {
    const g = (await store.tasks.lease(a, 30_000, clock.now()))!;
    assert.ok(g, `no task for ${a.name}`);
    const r = await store.tasks.complete(
      g.lease.id,
      g.lease.fencingToken,
      a.tokenId,
      outcome,
      report,
      followUp,
      clock.now(),
    );
    return { g, r };
  }
  const ok: Outcome = { kind: 'success' };
  const twoArches: FollowUp = { kind: 'fan-out', role: 'build', taskKind: 'binary', arches: ['x86_64', 'aarch64'] };

  test('a build through its stages by completions: fan-out, the last binary queues signing, signing a test', async () => {
    const store = await fresh();
    await seed(store);
    await store.db
      .insertInto('settings')
      .values({ key: 'signing_key', value: 'F'.repeat(40) })
      .execute();
    const builder = await agent(store, 'b1', ['x86_64', 'aarch64', 'src']);
    const srpm = await leaseAndEnd(store, builder, ok, twoArches, BUILDROOT);
    assert.deepEqual([srpm.r.task.state, srpm.r.buildState, srpm.r.queuedNew], ['succeeded', 'running', 2]);
    const first = await leaseAndEnd(store, builder, ok, { kind: 'none' }, BUILDROOT);
    assert.deepEqual([first.r.buildState, first.r.queuedNew], ['running', 0]);
    const second = await leaseAndEnd(store, builder, ok, { kind: 'none' }, BUILDROOT);
    assert.deepEqual([second.r.buildState, second.r.queuedNew], ['succeeded', 1]);
    const buildId = srpm.g.task.buildId;
    assert.equal((await store.builds.get(buildId))!.state, 'succeeded');

    const role = async (r: 'sign' | 'test') => {
      const tokenId = await store.tokens.create(r, `hash-${r}`, [`agent:${r}`], clock.now());
      return store.agents.register({ name: r, role: r, arches: ['any'], capabilities: {}, tokenId }, clock.now());
    };
    const sign = await leaseAndEnd(store, await role('sign'), ok);
    assert.deepEqual([sign.g.task.kind, sign.r.buildState, sign.r.queuedNew], ['sign', 'succeeded', 1]);
    const tested = await leaseAndEnd(store, await role('test'), { kind: 'failure', code: 'TESTS_FAILED', reason: 't' });
    assert.deepEqual([tested.g.task.kind, tested.r.task.state, tested.r.buildState], ['test', 'failed', 'succeeded']);
    assert.equal(tested.r.queuedNew, 0);
    assert.equal((await store.builds.get(buildId))!.state, 'succeeded', 'a test leaves the build state alone');
    assert.deepEqual(
      (await store.builds.listEvents(buildId)).map((e) => e.kind),
      [
        'build.created',
        'task.succeeded',
        'build.fanned-out',
        'task.succeeded',
        'task.succeeded',
        'build.succeeded',
        'build.sign-queued',
        'task.succeeded',
        'build.test-queued',
        'task.failed',
      ],
    );
    const events = await store.builds.listEvents(buildId);
    assert.deepEqual(events.find((e) => e.kind === 'build.fanned-out')?.data, { arches: ['x86_64', 'aarch64'] });
    assert.deepEqual(events.at(-1)?.data, { code: 'TESTS_FAILED', reason: 't' });
    const tasks = await store.tasks.listOfBuild(buildId);
    assert.deepEqual(tasks[1]!.result, BUILDROOT);
    assert.ok(tasks.every((t) => t.finishedAt !== null));
  });

  test("a failed binary task fails the build with its arch and reason and cancels the build's queued tasks", async () => {
    const store = await fresh();
    await seed(store);
    const builder = await agent(store, 'b1', ['x86_64', 'src']);
    await leaseAndEnd(store, builder, ok, twoArches, BUILDROOT);
    const failed = await leaseAndEnd(store, builder, { kind: 'failure', code: 'BUILD_FAILED', reason: 'exit 1' });
    assert.deepEqual([failed.r.task.state, failed.r.buildState, failed.r.queuedNew], ['failed', 'failed', 0]);
    const build = (await store.builds.get(failed.g.task.buildId))!;
    assert.deepEqual([build.state, build.reasonCode, build.reason], ['failed', 'BUILD_FAILED', 'x86_64: exit 1']);
    const other = (await store.tasks.listOfBuild(build.id)).find((t) => t.arch === 'aarch64')!;
    assert.deepEqual([other.state, other.reasonCode], ['cancelled', 'BUILD_FAILED']);
    assert.equal(await store.tasks.lease(await agent(store, 'arm', ['aarch64']), 30_000, clock.now()), null);
  });

  test("an agent's errors requeue a task until its attempts run out; a follow-up can fail a successful task", async () => {
    const store = await fresh();
    await seed(store, 'errs', 2);
    const a = await agent(store);
    const error: Outcome = { kind: 'error', code: 'AGENT_ERROR', reason: 'disk full' };
    const once = await leaseAndEnd(store, a, error);
    assert.deepEqual([once.r.task.state, once.r.task.leaseId, once.r.task.agentId], ['queued', null, null]);
    assert.equal(once.r.buildState, 'queued', 'its only task is queued again');
    const twice = await leaseAndEnd(store, a, error); // maxAttempts is 2
    assert.equal(twice.g.task.id, once.g.task.id);
    assert.deepEqual(
      [twice.r.task.state, twice.r.task.reasonCode, twice.r.task.reason, twice.r.buildState],
      ['failed', 'AGENT_ERROR', 'disk full (gave up after 2 attempts)', 'failed'],
    );
    assert.equal(twice.r.task.leaseId, twice.g.lease.id, 'a finished task keeps its last lease');
    const refused = await leaseAndEnd(store, a, ok, { kind: 'fail-build', code: 'SRPM_MISSING', reason: 'no SRPM' });
    assert.deepEqual(
      [refused.r.task.state, refused.r.task.reasonCode, refused.r.buildState],
      ['failed', 'SRPM_MISSING', 'failed'],
    );
  });

  test('a completion is refused, changing nothing, for another agent, a stale token, an expired or unknown lease', async () => {
    const store = await fresh();
    await seed(store);
    const a = await agent(store);
    const other = await agent(store, 'n2');
    const g = (await store.tasks.lease(a, 1000, clock.now()))!;
    const end = (tokenId: number, fencing: number, leaseId = g.lease.id) =>
      store.tasks.complete(leaseId, fencing, tokenId, ok, null, { kind: 'none' }, clock.now());
    await rejectsWith(end(other.tokenId, g.lease.fencingToken), 'FORBIDDEN');
    // Whose lease it is comes before what the report says, on both dialects.
    await rejectsWith(
      store.tasks.complete(
        g.lease.id,
        g.lease.fencingToken,
        other.tokenId,
        ok,
        { x: 1 },
        { kind: 'none' },
        clock.now(),
      ),
      'FORBIDDEN',
    );
    await rejectsWith(end(a.tokenId, g.lease.fencingToken + 1), 'STALE_FENCING_TOKEN');
    await rejectsWith(end(a.tokenId, g.lease.fencingToken, g.lease.id + 1000), 'LEASE_NOT_FOUND');
    clock.advance(1001);
    await rejectsWith(end(a.tokenId, g.lease.fencingToken), 'LEASE_EXPIRED');
    const t = (await store.tasks.get(g.task.id))!;
    assert.deepEqual([t.state, t.leaseId, t.finishedAt], ['leased', g.lease.id, null]);
    assert.deepEqual(
      (await store.builds.listEvents(t.buildId)).map((e) => e.kind),
      ['build.created'],
    );
  });

  test("a build's tasks ending at the same moment still settle it: both binaries succeed, the build succeeds", async () => {
    const store = await fresh();
    await seed(store, 'race', 6);
    const builder = await agent(store, 'b1', ['x86_64', 'aarch64', 'src']);
    for (let i = 0; i < 6; i++) await leaseAndEnd(store, builder, ok, twoArches, BUILDROOT);
    const grants = [];
    for (let i = 0; i < 12; i++) grants.push((await store.tasks.lease(builder, 30_000, clock.now()))!);
    await Promise.all(
      grants.map((g) =>
        store.tasks.complete(
          g.lease.id,
          g.lease.fencingToken,
          builder.tokenId,
          ok,
          null,
          { kind: 'none' },
          clock.now(),
        ),
      ),
    );
    const states = await Promise.all(grants.map(async (g) => (await store.builds.get(g.task.buildId))!.state));
    assert.deepEqual(states, Array(12).fill('succeeded'));
  });

  test("a completion that leases the agent's next task never takes one of its own build, and stands if that lease fails", async () => {
    const store = await fresh();
    await seed(store, 'one', 1);
    await seed(store, 'two', 1);
    const builder = await agent(store, 'b1', ['x86_64', 'aarch64', 'src']);
    const first = (await store.tasks.lease(builder, 30_000, clock.now()))!;
    const end = (g: typeof first, followUp: FollowUp, next: AgentRecord) =>
      store.tasks.completeAndLease(
        { agent: next, leaseMs: 30_000 },
        g.lease.id,
        g.lease.fencingToken,
        builder.tokenId,
        ok,
        BUILDROOT,
        followUp,
        clock.now(),
      );
    // The completion queues its build's binaries; the next task is the other build's SRPM, leased as a lease is.
    const r = await end(first, twoArches, builder);
    assert.equal(r.task.state, 'succeeded');
    assert.equal(r.queuedNew, 2);
    assert.equal(r.next.error, null);
    const second = r.next.grant!;
    assert.ok(second, 'the other build had a queued task');
    assert.notEqual(second.task.buildId, first.task.buildId);
    assert.equal(second.task.kind, 'srpm');
    assert.equal(second.lease.agentId, builder.id);
    assert.equal(second.lease.fencingToken, 1);
    assert.equal(second.lease.expiresAt, clock.now() + 30_000);
    assert.deepEqual(second.task, await store.tasks.get(second.task.id));
    assert.deepEqual(second.build, await store.builds.get(second.task.buildId));
    assert.equal(second.build.state, 'running');
    const ownBinaries = (await store.tasks.listOfBuild(first.task.buildId)).filter((t) => t.kind === 'binary');
    assert.deepEqual(
      ownBinaries.map((t) => t.state),
      ['queued', 'queued'],
    );

    // Only the completed task's own build has queued tasks: no next task, and no error.
    const binary = (await store.tasks.lease(builder, 30_000, clock.now()))!;
    assert.equal(binary.task.buildId, first.task.buildId);
    const lone = await end(binary, { kind: 'none' }, builder);
    assert.equal(lone.task.state, 'succeeded');
    assert.deepEqual(lone.next, { grant: null, error: null });

    // A lease that fails (here for an agent that does not exist) undoes itself only: the completion stands.
    const failed = await end(second, twoArches, { ...builder, id: 999_999 });
    assert.equal(failed.next.grant, null);
    assert.ok(failed.next.error, 'the failed lease says why');
    assert.equal((await store.tasks.get(second.task.id))!.state, 'succeeded');
    assert.equal(failed.queuedNew, 2);
    assert.equal((await store.tasks.listInState('leased')).length, 0);

    // A refused completion leases nothing.
    await rejectsWith(end(second, { kind: 'none' }, builder), 'LEASE_ENDED');
    assert.equal((await store.tasks.listInState('leased')).length, 0);
  });
});
