import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gitRepo, lenix, specWith } from './support/cli.js';
import { http, testServer, type TestServer } from './support/server.js';

/** SBOM requests that cannot be answered get a coded 4xx and change nothing (no ledger entry). */
let t: TestServer;
before(async () => {
  t = await testServer();
});
after(async () => t.close());

test('bad SBOM requests: unknown build, artifact, repository or format, and an artifact that is not an RPM', async () => {
  const base = t.server.url;
  const admin = t.server.adminToken!;
  await gitRepo(path.join(t.dir, 'git'), { 'pkg.spec': specWith('pkg', 'echo hi') });
  assert.equal(
    (await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'pkg', url: path.join(t.dir, 'git') } }))
      .status,
    201,
  );
  const build = (await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'pkg' } })).json;
  // A log uploaded as an artifact: a real artifact, but not an RPM.
  const token = await t.token('node', ['agent:build']);
  const agentId = (
    await http(base, 'POST', '/api/v1/agent/register', {
      token,
      json: { name: 'node', role: 'build', arches: ['x86_64', 'src'] },
    })
  ).json.agentId;
  const lease = (await http(base, 'POST', '/api/v1/agent/lease', { token, json: { agentId, waitMs: 2000 } })).json
    .lease;
  const log = 'build log\n';
  const sha = createHash('sha256').update(log).digest('hex');
  const up = await http(
    base,
    'PUT',
    `/api/v1/agent/leases/${lease.id}/artifacts?fencingToken=${lease.fencingToken}&name=build.log&kind=log&sha256=${sha}`,
    { token, body: log },
  );
  assert.equal(up.status, 201, up.text);
  const size = async () => (await http(base, 'GET', '/api/v1/ledger')).json.size as number;
  const before = await size();

  const cases: [string, number, string][] = [
    ['/api/v1/builds/999999/sbom', 404, 'BUILD_NOT_FOUND'],
    [`/api/v1/builds/${build.id}/sbom?format=cyclonedx-yaml`, 400, 'BAD_REQUEST'],
    [`/api/v1/artifacts/${'0'.repeat(64)}/sbom`, 404, 'ARTIFACT_NOT_FOUND'],
    [`/api/v1/artifacts/${sha}/sbom`, 422, 'NOT_AN_RPM'],
    ['/api/v1/artifacts/xyz/sbom', 400, 'BAD_REQUEST'],
    ['/api/v1/repos/nope/snapshots/current/sbom', 404, 'REPO_NOT_FOUND'],
  ];
  for (const [url, status, code] of cases) {
    const r = await http(base, 'GET', url);
    assert.deepEqual([r.status, r.json?.code], [status, code], url);
    assert.ok(typeof r.json.message === 'string' && r.json.message.length > 0);
  }
  assert.equal(await size(), before, 'no statement was recorded for a refused request');
  const cli = await lenix(['sbom', 'build:999999', '--server', base], { LENIX_CONFIG: path.join(t.dir, 'none.json') });
  assert.notEqual(cli.code, 0);
  assert.match(cli.stderr, /^lenix: BUILD_NOT_FOUND: /m);
});
