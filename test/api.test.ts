import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitRepo, specWith } from './support/cli.js';
import { apiServer, http, type TestServer } from './support/server.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A ledger entry's bytes and every base64 payload in them, decoded (DSSE envelopes carry statements in base64). */
function decodeAll(entry: { data: Uint8Array }): string {
  const text = Buffer.from(entry.data).toString('utf8');
  const payloads = [...text.matchAll(/"payload"\s*:\s*"([A-Za-z0-9+/=]+)"/g)].map((m) =>
    Buffer.from(m[1]!, 'base64').toString('utf8'),
  );
  assert.ok(payloads.length > 0, 'the entry is a DSSE envelope with a payload');
  return [text, ...payloads].join('\n');
}

describe('Master API', () => {
  let t: TestServer;
  let base: string;
  let admin: string;
  let buildToken: string;

  before(async () => {
    ({ t, base, admin, buildToken } = await apiServer());
  });
  after(async () => t.close());

  test('serves an OpenAPI 3 document describing the API', async () => {
    const r = await http(base, 'GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    assert.match(r.json.openapi, /^3\./);
    for (const p of [
      '/api/v1/builds/{id}',
      '/api/v1/artifacts/{sha256}',
      '/api/v1/tasks/{id}/log',
      '/api/v1/agent/lease',
      '/api/v1/agent/leases/{lease}/complete',
    ]) {
      assert.ok(r.json.paths[p], `missing ${p}`);
    }
  });

  test('anonymous readers can GET; every write needs a token with the right scope', async () => {
    assert.equal((await http(base, 'GET', '/api/v1/builds')).status, 200);
    const noToken = await http(base, 'POST', '/api/v1/builds', { json: { source: 'good' } });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.json.code, 'UNAUTHENTICATED');
    const badToken = await http(base, 'POST', '/api/v1/builds', {
      token: 'lnx_not-a-real-token',
      json: { source: 'good' },
    });
    assert.equal(badToken.status, 401);
    const wrongScope = await http(base, 'POST', '/api/v1/builds', { token: buildToken, json: { source: 'good' } });
    assert.equal(wrongScope.status, 403);
    assert.equal(wrongScope.json.code, 'FORBIDDEN');
    const tokenByMaintainer = await http(base, 'POST', '/api/v1/tokens', {
      token: await t.token('m', ['maintainer']),
      json: { name: 'x', scopes: ['admin'] },
    });
    assert.equal(tokenByMaintainer.status, 403);
    assert.equal((await http(base, 'GET', '/api/v1/builds')).json.builds.length, 0, 'refused writes created nothing');
  });

  test('bad input gets a coded 4xx and changes nothing', async () => {
    const before = (await http(base, 'GET', '/api/v1/builds')).json.builds.length;
    const unknown = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'no-such-source' } });
    assert.deepEqual([unknown.status, unknown.json.code], [404, 'SOURCE_NOT_FOUND']);

    const badRepo = path.join(t.dir, 'repos', 'broken');
    await gitRepo(badRepo, { 'broken.spec': 'Name: broken\nVersion: 1\n%description\n%{error:this spec is broken}\n' });
    assert.equal(
      (await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'broken', url: badRepo } })).status,
      201,
    );
    const badSpec = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'broken' } });
    assert.deepEqual([badSpec.status, badSpec.json.code], [422, 'SPEC_INVALID']);

    // A Release that still holds a macro after parsing (Fedora's %autorelease on a host without rpmautospec) is
    // refused, naming it, rather than recorded as the EVR.
    const autoRepo = path.join(t.dir, 'repos', 'auto');
    await gitRepo(autoRepo, {
      'auto.spec':
        'Name: auto\nVersion: 2.8\nRelease: %autorelease\nSummary: x\nLicense: MIT\n%description\nx\n%files\n',
    });
    await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'auto', url: autoRepo } });
    const auto = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'auto' } });
    assert.deepEqual([auto.status, auto.json.code], [422, 'SPEC_MACRO_UNDEFINED']);
    assert.match(auto.json.message, /auto\.spec: Version-Release 2\.8-%autorelease still holds %autorelease/);

    const noRef = await http(base, 'POST', '/api/v1/builds', {
      token: admin,
      json: { source: 'good', ref: 'no-such-branch' },
    });
    assert.deepEqual([noRef.status, noRef.json.code], [404, 'REF_NOT_FOUND']);

    const dotdot = await http(base, 'PUT', '/api/v1/lookaside?name=../../etc/passwd', { token: admin, body: 'x' });
    assert.deepEqual([dotdot.status, dotdot.json.code], [400, 'INVALID_NAME']);

    const tooBig = await http(base, 'PUT', '/api/v1/lookaside?name=big.tar', {
      token: admin,
      body: new Uint8Array(65 * 1024),
    });
    assert.deepEqual([tooBig.status, tooBig.json.code], [413, 'BODY_TOO_LARGE']);
    const hugeJson = await http(base, 'POST', '/api/v1/builds', {
      token: admin,
      json: { source: 'good', ref: 'x'.repeat(2 * 1024 * 1024) },
    });
    assert.deepEqual([hugeJson.status, hugeJson.json.code], [413, 'BODY_TOO_LARGE']);

    const badJson = await http(base, 'POST', '/api/v1/builds', {
      token: admin,
      body: '{nope',
      type: 'application/json',
    });
    assert.deepEqual([badJson.status, badJson.json.code], [400, 'BAD_REQUEST']);
    const badSchema = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 42 } });
    assert.deepEqual([badSchema.status, badSchema.json.code], [400, 'BAD_REQUEST']);
    const badSource = await http(base, 'POST', '/api/v1/sources', {
      token: admin,
      json: { name: '../evil', url: '/tmp' },
    });
    assert.deepEqual([badSource.status, badSource.json.code], [400, 'INVALID_NAME']);
    const optionUrl = await http(base, 'POST', '/api/v1/sources', {
      token: admin,
      json: { name: 'evil', url: '--upload-pack=touch /tmp/x' },
    });
    assert.deepEqual([optionUrl.status, optionUrl.json.code], [400, 'BAD_REQUEST']);
    const missingRepo = await http(base, 'POST', '/api/v1/sources', {
      token: admin,
      json: { name: 'ghost', url: path.join(t.dir, 'nope') },
    });
    assert.deepEqual([missingRepo.status, missingRepo.json.code], [422, 'GIT_FAILED']);
    assert.match(
      missingRepo.json.message,
      /^git clone failed: fatal: .*does not exist/,
      'the message says what failed',
    );

    assert.equal((await http(base, 'GET', '/api/v1/sources/ghost')).status, 404);
    assert.equal((await http(base, 'GET', '/api/v1/builds/999999')).json.code, 'BUILD_NOT_FOUND');
    assert.equal((await http(base, 'GET', '/api/v1/artifacts/abc')).status, 400);
    assert.equal((await http(base, 'GET', `/api/v1/artifacts/${'0'.repeat(64)}`)).json.code, 'ARTIFACT_NOT_FOUND');
    assert.equal((await http(base, 'GET', '/api/v1/nowhere')).json.code, 'NOT_FOUND');
    assert.equal((await http(base, 'GET', '/api/v1/builds')).json.builds.length, before, 'no build was created');
  });

  test('tokens: admins list and revoke them; a revoked agent token fails at once and its lease goes back to the queue', async () => {
    const repo = path.join(t.dir, 'repos', 'tokened');
    await gitRepo(repo, { 'tokened.spec': specWith('tokened', 'true') });
    assert.equal(
      (await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'tokened', url: repo } })).status,
      201,
    );
    const made = await http(base, 'POST', '/api/v1/tokens', {
      token: admin,
      json: { name: 'node-revoked', scopes: ['agent:build'], expiresInDays: 30 },
    });
    assert.equal(made.status, 201);
    assert.ok(Date.parse(made.json.expiresAt) > Date.now());
    const secret = made.json.token as string;
    const agentId = (
      await http(base, 'POST', '/api/v1/agent/register', {
        token: secret,
        json: { name: 'node-revoked', role: 'build', arches: ['x86_64', 'noarch', 'src'] },
      })
    ).json.agentId;
    const built = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'tokened' } });
    let leased = await http(base, 'POST', '/api/v1/agent/lease', { token: secret, json: { agentId, waitMs: 2000 } });
    while (leased.json?.task?.buildId !== built.json.id)
      leased = await http(base, 'POST', '/api/v1/agent/lease', { token: secret, json: { agentId, waitMs: 2000 } });
    const taskId = leased.json.task.taskId as number;

    const listed = await http(base, 'GET', '/api/v1/tokens', { token: admin });
    assert.equal(listed.status, 200);
    const mine = listed.json.tokens.find((x: { name: string }) => x.name === 'node-revoked');
    assert.deepEqual(
      [mine.scopes, mine.revokedAt, typeof mine.token],
      [['agent:build'], null, 'undefined'],
      'never the secret',
    );
    assert.equal((await http(base, 'GET', '/api/v1/tokens', { token: buildToken })).status, 403);
    assert.equal((await http(base, 'DELETE', `/api/v1/tokens/${mine.id}`, { token: buildToken })).status, 403);

    const revoked = await http(base, 'DELETE', `/api/v1/tokens/${mine.id}`, { token: admin });
    assert.equal(revoked.status, 200, revoked.text);
    assert.ok(revoked.json.revokedAt);
    const beat = await http(base, 'POST', `/api/v1/agent/leases/${leased.json.lease.id}/heartbeat`, {
      token: secret,
      json: { fencingToken: leased.json.lease.fencingToken },
    });
    assert.deepEqual(
      [beat.status, beat.json.code],
      [401, 'UNAUTHENTICATED'],
      'refused at once, not after a cache time',
    );
    assert.equal(
      (await http(base, 'GET', `/api/v1/tasks/${taskId}`)).json.state,
      'queued',
      'its task is back in the queue',
    );
    assert.deepEqual(
      [(await http(base, 'DELETE', '/api/v1/tokens/999999', { token: admin })).json.code],
      ['TOKEN_NOT_FOUND'],
    );
    for (const name of ['bad\u0000name', 'evil\u202Egnp.exe', 'tab\tname']) {
      const r = await http(base, 'POST', '/api/v1/tokens', { token: admin, json: { name, scopes: ['maintainer'] } });
      assert.deepEqual([r.status, r.json.code], [400, 'BAD_REQUEST'], JSON.stringify(name));
    }
    await http(base, 'POST', `/api/v1/builds/${built.json.id}/cancel`, { token: admin });
  });

  test('errors the router and the HTTP parser meet get the same coded JSON body; documented body limits are the real ones', async () => {
    const long = await http(base, 'GET', `/api/v1/sources/${'a'.repeat(300)}`);
    assert.deepEqual([long.status, long.json?.code], [414, 'URI_TOO_LONG']);
    const headers = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const u = new URL(base);
      const sock = net.connect(Number(u.port), u.hostname, () =>
        sock.end(`GET /api/v1/builds HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      );
      let text = '';
      sock.on('data', (d) => (text += d.toString()));
      sock.on('error', reject);
      sock.on('close', () =>
        resolve({
          status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]),
          body: text.slice(text.indexOf('\r\n\r\n') + 4),
        }),
      );
    });
    assert.equal(headers.status, 431);
    assert.equal((JSON.parse(headers.body) as { code: string }).code, 'HEADERS_TOO_LARGE');
    // The errata import takes what its schema says (50 MiB of content), not the 1 MiB JSON default.
    const big = await http(base, 'POST', '/api/v1/errata/import', {
      token: admin,
      json: { repo: 'no-such-repo', content: 'x'.repeat(2 * 1024 * 1024) },
    });
    assert.notEqual(big.status, 413, big.text);
    assert.equal(typeof big.json?.code, 'string');
  });

  test('local sources only under the allowed roots; public records never name a path on the server', async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), 'lenix-outside-'));
    try {
      await gitRepo(outside, { 'outside.spec': specWith('outside', 'true') });
      const refused = await http(base, 'POST', '/api/v1/sources', {
        token: admin,
        json: { name: 'outside', url: outside },
      });
      assert.deepEqual([refused.status, refused.json.code], [403, 'SOURCE_NOT_ALLOWED']);
      const viaFileUrl = await http(base, 'POST', '/api/v1/sources', {
        token: admin,
        json: { name: 'outside2', url: `file://${outside}` },
      });
      assert.deepEqual([viaFileUrl.status, viaFileUrl.json.code], [403, 'SOURCE_NOT_ALLOWED']);
      const climbing = await http(base, 'POST', '/api/v1/sources', {
        token: admin,
        json: { name: 'climb', url: path.join(t.dir, 'repos', '..', '..', path.basename(outside)) },
      });
      assert.equal(climbing.status, 403);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
    const good = await http(base, 'GET', '/api/v1/sources/good');
    assert.equal(good.json.url, 'lenix:source/good');
    assert.ok(
      !JSON.stringify((await http(base, 'GET', '/api/v1/sources')).json).includes(t.dir),
      'no server path in the sources list',
    );
    // The ledger's statements (source provenance) name the source, not its path here.
    const ledger = t.server.services.ledger.store;
    const entries = await ledger.entries(0, await ledger.size());
    assert.ok(entries.length > 0);
    const sources = entries.filter((e) => e.kind === 'source');
    assert.ok(sources.length > 0, 'source statements were recorded');
    for (const e of entries) assert.ok(!decodeAll(e).includes(t.dir), 'no server path in the ledger');
    assert.ok(
      sources.every((e) => /"name":"lenix:source\/[a-z]/.test(decodeAll(e))),
      'each source is named by its Lenix name',
    );
  });

  test('lookaside uploads are stored by digest and served back verified', async () => {
    const bytes = 'tarball bytes';
    const r = await http(base, 'PUT', '/api/v1/lookaside?name=src-1.0.tar.gz', { token: admin, body: bytes });
    assert.equal(r.status, 201);
    assert.equal(r.json.sha256, sha(bytes));
    const wrong = await http(base, 'PUT', `/api/v1/lookaside?name=x.tar&sha256=${'1'.repeat(64)}`, {
      token: admin,
      body: `${bytes}!`,
    });
    assert.deepEqual([wrong.status, wrong.json.code], [422, 'DIGEST_MISMATCH']);
    const back = await http(base, 'GET', `/api/v1/lookaside/${sha(bytes)}`);
    assert.equal(back.text, bytes);
  });
});
