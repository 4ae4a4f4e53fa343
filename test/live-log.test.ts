import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readSse } from '../src/cli/follow.js';
import { gitRepo, specWith, until } from './support/cli.js';
import { http, testServer, type TestServer } from './support/server.js';

/** 500 simultaneous followers of one task's live log each receive every line, in order, then the end. */
let t: TestServer;
before(async () => {
  t = await testServer();
});
after(async () => t.close());

test('500 live-log followers of one task all receive every line', async () => {
  const base = t.server.url;
  const admin = t.server.adminToken!;
  await gitRepo(path.join(t.dir, 'git'), { 'pkg.spec': specWith('pkg', 'echo hi') });
  assert.equal(
    (await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'pkg', url: path.join(t.dir, 'git') } }))
      .status,
    201,
  );
  assert.equal((await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'pkg' } })).status, 201);
  const token = await t.token('node', ['agent:build']);
  const agentId = (
    await http(base, 'POST', '/api/v1/agent/register', {
      token,
      json: { name: 'node', role: 'build', arches: ['x86_64', 'src'] },
    })
  ).json.agentId;
  const { lease, task } = (await http(base, 'POST', '/api/v1/agent/lease', { token, json: { agentId, waitMs: 2000 } }))
    .json;

  const followers = Array.from({ length: 500 }, async () => {
    const res = await fetch(`${base}/api/v1/tasks/${task.taskId}/log?follow=1`);
    let text = '';
    let end = '';
    for await (const ev of readSse(res.body!)) {
      if (ev.event === 'log') text += (JSON.parse(ev.data) as { text: string }).text;
      if (ev.event === 'end') end = (JSON.parse(ev.data) as { state: string }).state;
    }
    return { text, end };
  });
  let expected = '';
  for (let i = 1; i <= 50; i++) {
    const line = `line ${i}: ${'é'.repeat(i % 7)} the build goes on\n`;
    const r = await http(
      base,
      'POST',
      `/api/v1/agent/leases/${lease.id}/log?fencingToken=${lease.fencingToken}&offset=${Buffer.byteLength(expected)}`,
      { token, body: line },
    );
    assert.equal(r.status, 200, r.text);
    expected += line;
  }
  // The dashboard (and its JSON) shows the running task and the agent working on it.
  // (The dashboard shares a read for a quarter second: the running task shows within that.)
  const dash = await until('the running task on the dashboard', async () => {
    const d = (await http(base, 'GET', '/api/v1/dashboard')).json;
    return d.running.length > 0 ? d : null;
  });
  assert.deepEqual(
    dash.running.map((r: { id: number; agent: string }) => [r.id, r.agent]),
    [[task.taskId, 'node']],
  );
  assert.equal(dash.agentsOnline.find((a: { name: string }) => a.name === 'node').task, task.taskId);
  const done = await http(base, 'POST', `/api/v1/agent/leases/${lease.id}/complete`, {
    token,
    json: { fencingToken: lease.fencingToken, outcome: { kind: 'failure', code: 'BUILD_FAILED', reason: 'test' } },
  });
  assert.equal(done.status, 200, done.text);
  const results = await Promise.all(followers);
  assert.equal(results.filter((r) => r.text === expected && r.end === 'failed').length, 500);
});
