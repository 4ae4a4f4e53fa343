import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../src/core/errors.js';
import { until } from './support/cli.js';
import { apiServer, http, type TestServer } from './support/server.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** The agent protocol over HTTP against a fresh server (the API's other routes: api.test.ts). */
describe('Master API: agent protocol', () => {
  let t: TestServer;
  let base: string;
  let admin: string;
  let buildToken: string;

  before(async () => {
    ({ t, base, admin, buildToken } = await apiServer());
  });
  after(async () => t.close());

  test('agent protocol: stale fencing tokens get 409 and change nothing; a wrong digest is refused', async () => {
    const created = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'good' } });
    assert.equal(created.status, 201, created.text);
    const reg = await http(base, 'POST', '/api/v1/agent/register', {
      token: buildToken,
      json: { name: 'node-a', role: 'build', arches: ['x86_64', 'src'] },
    });
    assert.equal(reg.status, 200);
    const agentId = reg.json.agentId;
    const wrongRole = await http(base, 'POST', '/api/v1/agent/register', {
      token: buildToken,
      json: { name: 'node-a', role: 'sign', arches: [] },
    });
    assert.equal(wrongRole.status, 403);

    const first = await http(base, 'POST', '/api/v1/agent/lease', {
      token: buildToken,
      json: { agentId, waitMs: 2000 },
    });
    assert.equal(first.status, 200, first.text);
    const lease1 = first.json.lease;
    assert.equal(first.json.task.kind, 'srpm');
    assert.equal(first.json.task.buildId, created.json.id);

    const log = await http(
      base,
      'POST',
      `/api/v1/agent/leases/${lease1.id}/log?fencingToken=${lease1.fencingToken}&offset=0`,
      { token: buildToken, body: 'line one\n' },
    );
    assert.deepEqual(log.json, { size: 9 });
    const gap = await http(
      base,
      'POST',
      `/api/v1/agent/leases/${lease1.id}/log?fencingToken=${lease1.fencingToken}&offset=100`,
      { token: buildToken, body: 'x' },
    );
    assert.deepEqual([gap.status, gap.json.code], [409, 'LOG_OFFSET_GAP']);

    const body = new TextEncoder().encode('not really an rpm');
    const mismatch = await http(
      base,
      'PUT',
      `/api/v1/agent/leases/${lease1.id}/artifacts?fencingToken=${lease1.fencingToken}&name=good-1.0-1.src.rpm&kind=srpm&sha256=${'2'.repeat(64)}`,
      { token: buildToken, body },
    );
    assert.deepEqual([mismatch.status, mismatch.json.code], [422, 'DIGEST_MISMATCH']);
    const notRpm = await http(
      base,
      'PUT',
      `/api/v1/agent/leases/${lease1.id}/artifacts?fencingToken=${lease1.fencingToken}&name=good-1.0-1.src.rpm&kind=srpm&sha256=${sha(body)}`,
      { token: buildToken, body },
    );
    assert.deepEqual([notRpm.status, notRpm.json.code], [422, 'NOT_AN_RPM']);
    const traversal = await http(
      base,
      'PUT',
      `/api/v1/agent/leases/${lease1.id}/artifacts?fencingToken=${lease1.fencingToken}&name=../x.src.rpm&kind=srpm&sha256=${sha(body)}`,
      { token: buildToken, body },
    );
    assert.deepEqual([traversal.status, traversal.json.code], [400, 'INVALID_NAME']);

    // Let the lease lapse (no heartbeat): the reaper requeues the task; a second lease gets a new token.
    await until(
      'the task to be requeued',
      async () => (await http(base, 'GET', `/api/v1/tasks/${first.json.task.taskId}`)).json.state === 'queued',
    );
    const second = await http(base, 'POST', '/api/v1/agent/lease', {
      token: buildToken,
      json: { agentId, waitMs: 2000 },
    });
    assert.equal(second.status, 200);
    assert.equal(second.json.task.taskId, first.json.task.taskId);
    assert.equal(second.json.lease.fencingToken, lease1.fencingToken + 1);

    const stale = await http(base, 'POST', `/api/v1/agent/leases/${lease1.id}/complete`, {
      token: buildToken,
      json: { fencingToken: lease1.fencingToken, outcome: { kind: 'success' } },
    });
    assert.deepEqual([stale.status, stale.json.code], [409, 'STALE_FENCING_TOKEN']);
    const staleBeat = await http(base, 'POST', `/api/v1/agent/leases/${lease1.id}/heartbeat`, {
      token: buildToken,
      json: { fencingToken: lease1.fencingToken },
    });
    assert.equal(staleBeat.status, 409);
    const staleUpload = await http(
      base,
      'PUT',
      `/api/v1/agent/leases/${lease1.id}/artifacts?fencingToken=${lease1.fencingToken}&name=a.log&kind=log&sha256=${sha('x')}`,
      { token: buildToken, body: 'x' },
    );
    assert.equal(staleUpload.status, 409);
    const task = (await http(base, 'GET', `/api/v1/tasks/${first.json.task.taskId}`)).json;
    assert.equal(task.state, 'leased');
    assert.equal(task.artifacts.length, 0);
    assert.equal(task.attempts, 2);

    const otherToken = await t.token('node-b', ['agent:build']);
    const hijack = await http(base, 'POST', `/api/v1/agent/leases/${second.json.lease.id}/complete`, {
      token: otherToken,
      json: { fencingToken: second.json.lease.fencingToken, outcome: { kind: 'success' } },
    });
    assert.equal(hijack.status, 403, 'another agent cannot complete this lease');

    const done = await http(base, 'POST', `/api/v1/agent/leases/${second.json.lease.id}/complete`, {
      token: buildToken,
      json: {
        fencingToken: second.json.lease.fencingToken,
        outcome: { kind: 'failure', code: 'BUILD_FAILED', reason: 'test' },
      },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json.buildState, 'failed');
    const again = await http(base, 'POST', `/api/v1/agent/leases/${second.json.lease.id}/complete`, {
      token: buildToken,
      json: { fencingToken: second.json.lease.fencingToken, outcome: { kind: 'success' } },
    });
    assert.equal(again.status, 409);
    const b = (await http(base, 'GET', `/api/v1/builds/${created.json.id}`)).json;
    assert.equal(b.state, 'failed');
    assert.equal(b.tasks[0].reason, 'test');
  });

  test("a completion can bring the agent's next task; a next that cannot be leased answers none, the completion stands", async () => {
    const builds = [];
    for (let i = 0; i < 2; i++) {
      const created = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'good' } });
      assert.equal(created.status, 201, created.text);
      builds.push(created.json.id as number);
    }
    const agentId = (
      await http(base, 'POST', '/api/v1/agent/register', {
        token: buildToken,
        json: { name: 'node-next', role: 'build', arches: ['x86_64', 'src'] },
      })
    ).json.agentId;
    const fail = { kind: 'failure', code: 'BUILD_FAILED', reason: 'test' };
    const first = await http(base, 'POST', '/api/v1/agent/lease', { token: buildToken, json: { agentId, waitMs: 0 } });
    assert.equal(first.status, 200, first.text);
    const done = await http(base, 'POST', `/api/v1/agent/leases/${first.json.lease.id}/complete`, {
      token: buildToken,
      json: { fencingToken: first.json.lease.fencingToken, outcome: fail, next: { agentId } },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json.task.state, 'failed');
    const next = done.json.next;
    assert.ok(next, 'the completion brought the other queued task');
    assert.notEqual(next.task.buildId, first.json.task.buildId);
    assert.deepEqual(new Set([first.json.task.buildId, next.task.buildId]), new Set(builds));
    const leased = (await http(base, 'GET', `/api/v1/tasks/${next.task.taskId}`)).json;
    assert.deepEqual([leased.state, leased.attempts], ['leased', 1]);

    // Another token's agent cannot be leased for: no next task, and the completion is still recorded.
    const otherToken = await t.token('node-c', ['agent:build']);
    const otherAgent = (
      await http(base, 'POST', '/api/v1/agent/register', {
        token: otherToken,
        json: { name: 'node-c', role: 'build', arches: ['x86_64', 'src'] },
      })
    ).json.agentId;
    await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'good' } });
    const refused = await http(base, 'POST', `/api/v1/agent/leases/${next.lease.id}/complete`, {
      token: buildToken,
      json: { fencingToken: next.lease.fencingToken, outcome: fail, next: { agentId: otherAgent } },
    });
    assert.equal(refused.status, 200, refused.text);
    assert.equal(refused.json.next, null);
    assert.equal((await http(base, 'GET', `/api/v1/tasks/${next.task.taskId}`)).json.state, 'failed');
    const third = await http(base, 'POST', '/api/v1/agent/lease', { token: buildToken, json: { agentId, waitMs: 0 } });
    assert.equal(third.status, 200, 'the third build was left queued');

    // With the queue empty, the completion answers no next task.
    const last = await http(base, 'POST', `/api/v1/agent/leases/${third.json.lease.id}/complete`, {
      token: buildToken,
      json: { fencingToken: third.json.lease.fencingToken, outcome: fail, next: { agentId } },
    });
    assert.equal(last.status, 200, last.text);
    assert.equal(last.json.next, null);
  });

  test("an agent's new arches count from its re-registration on (its record is kept between leases)", async () => {
    const created = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'good' } });
    assert.equal(created.status, 201, created.text);
    const register = (arches: string[]) =>
      http(base, 'POST', '/api/v1/agent/register', {
        token: buildToken,
        json: { name: 'node-arches', role: 'build', arches },
      });
    const first = await register(['aarch64']);
    assert.equal(first.status, 200, first.text);
    const agentId = first.json.agentId;
    const lease = () => http(base, 'POST', '/api/v1/agent/lease', { token: buildToken, json: { agentId, waitMs: 0 } });
    const none = await lease();
    assert.equal(none.status, 204, none.text);
    assert.equal((await register(['src'])).json.agentId, agentId);
    const got = await lease();
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.task.kind, 'srpm');
  });
});

describe('error code catalogue', () => {
  test('docs/errors.md lists every code with its HTTP status, and nothing else', async () => {
    const doc = await readFile(fileURLToPath(new URL('../../docs/errors.md', import.meta.url)), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (\d+) \|/gm)].map((m) => [
      m[1],
      Number(m[2]),
      Number(m[3]),
    ]);
    const expected = Object.entries(ERROR_CODES).map(([code, e]) => [code, e.status, e.exit]);
    assert.deepEqual(rows.sort(), expected.sort());
  });
});
