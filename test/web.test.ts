import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { testServer, type TestServer } from './support/server.js';

/** The web pages without a browser: status codes, the JSON redirect, refused actions, bad parameters. */
let t: TestServer;
before(async () => {
  t = await testServer();
});
after(async () => t.close());

const get = (base: string, path: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { headers, redirect: 'manual' });

test('pages render for anonymous readers with one main landmark; JSON clients are sent to the API', async () => {
  const base = t.server.url;
  for (const p of [
    '/',
    '/builds',
    '/builds?q=x&state=failed',
    '/sources',
    '/repositories',
    '/mirrors',
    '/errata',
    '/ledger',
    '/login',
  ]) {
    const r = await get(base, p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
    const body = await r.text();
    assert.equal(body.match(/<main\b/g)?.length, 1, `${p}: one main`);
    assert.match(body, /<nav class="main" aria-label="Main">/);
    assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  }
  const json = await get(base, '/builds?state=failed', { accept: 'application/json' });
  assert.equal(json.status, 303);
  assert.equal(json.headers.get('location'), '/api/v1/builds?state=failed');
});

test('bad parameters and unknown things get coded 4xx pages; actions need a signed-in maintainer', async () => {
  const base = t.server.url;
  for (const [p, status, code] of [
    ['/builds?state=bogus', 400, 'BAD_REQUEST'],
    ['/builds/99999', 404, 'BUILD_NOT_FOUND'],
    ['/builds?source=nope', 404, 'SOURCE_NOT_FOUND'],
    ['/errata/LXSA-2026:9999', 404, 'ERRATA_NOT_FOUND'],
  ] as const) {
    const r = await get(base, p);
    assert.equal(r.status, status, p);
    assert.match(await r.text(), new RegExp(`<strong>${code}</strong>`), p);
  }
  const form = {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual' as const,
  };
  assert.equal((await fetch(`${base}/builds/1/cancel`, { ...form, body: 'csrf=x' })).status, 401);
  assert.equal((await fetch(`${base}/login`, { ...form, body: 'token=not-a-real-token' })).status, 401);
  // A token without the maintainer scope signs in, but its actions are refused.
  const reader = await t.token('reader', ['agent:test']);
  const signed = await fetch(`${base}/login`, { ...form, body: `token=${reader}` });
  assert.equal(signed.status, 303);
  const cookie = (signed.headers.get('set-cookie') ?? '').split(';')[0]!;
  assert.match(signed.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/i);
  const page = await (await fetch(`${base}/`, { headers: { cookie } })).text();
  assert.match(page, /signed in as reader/);
  assert.ok(!page.includes(reader), 'the token is not in the page');
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(page)![1]!;
  assert.equal(
    (await fetch(`${base}/builds/1/cancel`, { ...form, headers: { ...form.headers, cookie }, body: `csrf=${csrf}` }))
      .status,
    403,
  );
  assert.equal(
    (await fetch(`${base}/logout`, { ...form, headers: { ...form.headers, cookie }, body: 'csrf=stale' })).status,
    403,
  );
});

test('admins see every token and revoke one from the tokens page; a revoked session is signed out at once; others are refused', async () => {
  const base = t.server.url;
  const form = {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual' as const,
  };
  const signIn = async (token: string) =>
    ((await fetch(`${base}/login`, { ...form, body: `token=${token}` })).headers.get('set-cookie') ?? '').split(
      ';',
    )[0]!;
  const csrfOn = async (cookie: string, p: string) =>
    /name="csrf" value="([0-9a-f]+)"/.exec(await (await fetch(`${base}${p}`, { headers: { cookie } })).text())![1]!;
  const maintainer = await t.token('web-maintainer', ['maintainer']);
  const victim = await t.token('web-victim', ['maintainer']);
  const maintainerCookie = await signIn(maintainer);
  assert.equal(
    (await fetch(`${base}/tokens`, { headers: { cookie: maintainerCookie } })).status,
    403,
    'maintainers do not see tokens',
  );
  assert.equal((await fetch(`${base}/tokens`)).status, 401);
  const victimCookie = await signIn(victim);
  assert.match(
    await (await fetch(`${base}/`, { headers: { cookie: victimCookie } })).text(),
    /signed in as web-victim/,
  );

  const admin = await signIn(t.server.adminToken!);
  const page = await (await fetch(`${base}/tokens`, { headers: { cookie: admin } })).text();
  assert.match(page, /<td>web-victim<\/td>/);
  assert.ok(!page.includes(victim) && !page.includes(maintainer), 'no secret in the page');
  const id = (await t.admin.json<{ tokens: { id: number; name: string }[] }>('GET', '/api/v1/tokens')).tokens.find(
    (x) => x.name === 'web-victim',
  )!.id;
  assert.equal(
    (
      await fetch(`${base}/tokens/${id}/revoke`, {
        ...form,
        headers: { ...form.headers, cookie: maintainerCookie },
        body: `csrf=${await csrfOn(maintainerCookie, '/')}`,
      })
    ).status,
    403,
  );
  const revoked = await fetch(`${base}/tokens/${id}/revoke`, {
    ...form,
    headers: { ...form.headers, cookie: admin },
    body: `csrf=${await csrfOn(admin, '/tokens')}`,
  });
  assert.equal(revoked.status, 303);
  assert.match(await (await fetch(`${base}/tokens`, { headers: { cookie: admin } })).text(), /revoked \d{4}-/);
  assert.doesNotMatch(
    await (await fetch(`${base}/`, { headers: { cookie: victimCookie } })).text(),
    /signed in as web-victim/,
    'the revoked session is over at once',
  );
});
