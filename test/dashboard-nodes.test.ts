import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gitRepo, specWith, until } from './support/cli.js';
import { http, testServer, type TestServer } from './support/server.js';

/**
 * Issue 17: a build whose arch has no build node online waits visibly. The dashboard lists, for each queued
 * arch, how many online build nodes build it; none is shown as "waiting for a … node".
 */
let t: TestServer;
before(async () => {
  t = await testServer();
});
after(async () => t.close());

test('the dashboard says which queued arches have no build node online', async () => {
  const base = t.server.url;
  const admin = t.server.adminToken!;
  await gitRepo(path.join(t.dir, 'git'), { 'pkg.spec': specWith('pkg', 'echo hi') });
  const src = await http(base, 'POST', '/api/v1/sources', {
    token: admin,
    json: { name: 'pkg', url: path.join(t.dir, 'git') },
  });
  assert.equal(src.status, 201, src.text);
  assert.equal((await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'pkg' } })).status, 201);
  const dash = async () => (await http(base, 'GET', '/api/v1/dashboard')).json as { queue: object; nodesFor: object };
  const first = await dash();
  assert.deepEqual([first.queue, first.nodesFor], [{ src: 1 }, { src: 0 }]);
  const page = await (await fetch(`${base}/`)).text();
  assert.match(page, /<td>src<\/td><td>1<\/td><td><strong>none: waiting for a src node<\/strong><\/td>/);

  // A build node for other arches does not count; one that builds source packages does.
  const register = async (name: string, arches: string[]) =>
    http(base, 'POST', '/api/v1/agent/register', {
      token: await t.token(name, ['agent:build']),
      json: { name, role: 'build', arches },
    });
  // (The dashboard shares a read for a quarter second: what changed shows within that.)
  assert.equal((await register('aarch64-only', ['aarch64'])).status, 200);
  const seen = await until('the aarch64 node on the dashboard', async () => {
    const d = (await http(base, 'GET', '/api/v1/dashboard')).json as {
      nodesFor: object;
      agentsOnline: { name: string }[];
    };
    return d.agentsOnline.some((a) => a.name === 'aarch64-only') ? d : null;
  });
  assert.deepEqual(seen.nodesFor, { src: 0 }, 'a node for other arches does not count');
  assert.equal((await register('any-source', ['x86_64', 'noarch', 'src'])).status, 200);
  await until('a source node on the dashboard', async () => JSON.stringify((await dash()).nodesFor) === '{"src":1}');
  await until(
    'the page without the waiting notice',
    async () => !/waiting for a src node/.test(await (await fetch(`${base}/`)).text()),
  );
});
