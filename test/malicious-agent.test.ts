import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { exportPublicKey, generateKey } from '../src/crypto/gpg.js';
import { gitRepo, specWith } from './support/cli.js';
import { http, testServer, type TestServer } from './support/server.js';

const run = promisify(execFile);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Build an SRPM and binary RPMs of `spec` on the host (test code, trusted), for the given target arches. */
async function rpms(dir: string, name: string, spec: string, targets: string[]): Promise<Map<string, Buffer>> {
  const top = path.join(dir, `top-${name}-${targets.join('-')}`);
  await mkdir(path.join(top, 'SPECS'), { recursive: true });
  const specFile = path.join(top, 'SPECS', `${name}.spec`);
  await writeFile(specFile, spec);
  const defs = ['--define', `_topdir ${top}`, '--define', `_dbpath ${top}/rpmdb`];
  await run('rpmbuild', ['-bs', ...defs, specFile]);
  const srpm = (await readdir(path.join(top, 'SRPMS')))[0]!;
  for (const t of targets)
    await run('rpmbuild', ['--rebuild', '--nodeps', '--target', t, ...defs, path.join(top, 'SRPMS', srpm)]);
  const out = new Map<string, Buffer>([[srpm, await readFile(path.join(top, 'SRPMS', srpm))]]);
  for (const arch of await readdir(path.join(top, 'RPMS'))) {
    for (const f of await readdir(path.join(top, 'RPMS', arch)))
      out.set(f, await readFile(path.join(top, 'RPMS', arch, f)));
  }
  return out;
}

/**
 * A compromised build agent (a valid agent:build token and a real lease) tries to slip packages into a build that
 * the build never made: foreign ones, renamed ones, other arches, other versions. Each is refused with its code,
 * and nothing of it can be signed or released, override or not.
 */
describe('a malicious build agent', () => {
  let t: TestServer;
  let base: string;
  let admin: string;
  let agentToken: string;

  before(async () => {
    t = await testServer({ arches: ['x86_64'], config: { leaseMs: 60_000 } });
    base = t.server.url;
    admin = t.server.adminToken!;
    agentToken = await t.token('evil-node', ['agent:build']);
  });
  after(async () => t.close());

  test('foreign, renamed, wrong-arch and wrong-version uploads are refused; the build can be neither signed nor released', {
    timeout: 120_000,
  }, async () => {
    const victimSpec = specWith('victim', 'true', { noarch: false });
    const repo = path.join(t.dir, 'repos', 'victim');
    await gitRepo(repo, { 'victim.spec': victimSpec });
    assert.equal(
      (await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'victim', url: repo } })).status,
      201,
    );
    const created = await http(base, 'POST', '/api/v1/builds', { token: admin, json: { source: 'victim' } });
    assert.equal(created.status, 201, created.text);
    const buildId = created.json.id as number;

    const own = await rpms(t.dir, 'victim', victimSpec, ['x86_64', 'ppc64le']);
    const foreign = await rpms(t.dir, 'glibc', specWith('glibc', 'true', { noarch: false }), ['x86_64']);
    const newer = await rpms(
      t.dir,
      'victim',
      specWith('victim', 'true', { noarch: false }).replace('Version: 1.0', 'Version: 9.9'),
      ['x86_64'],
    );

    const reg = await http(base, 'POST', '/api/v1/agent/register', {
      token: agentToken,
      json: { name: 'evil-node', role: 'build', arches: ['x86_64', 'noarch', 'src'] },
    });
    const agentId = reg.json.agentId as number;
    const lease = async (kind: string) => {
      const r = await http(base, 'POST', '/api/v1/agent/lease', { token: agentToken, json: { agentId, waitMs: 5000 } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.task.kind, kind);
      return r.json.lease as { id: number; fencingToken: number };
    };
    const upload = (l: { id: number; fencingToken: number }, name: string, kind: string, bytes: Buffer) =>
      http(
        base,
        'PUT',
        `/api/v1/agent/leases/${l.id}/artifacts?fencingToken=${l.fencingToken}&name=${encodeURIComponent(name)}&kind=${kind}&sha256=${sha(bytes)}`,
        { token: agentToken, body: bytes },
      );
    const refused = async (what: string, r: Awaited<ReturnType<typeof upload>>) =>
      assert.deepEqual([r.status, r.json?.code], [422, 'PACKAGE_MISMATCH'], `${what}: ${r.text}`);

    // The SRPM task: only the build's own SRPM, under its own name.
    const s = await lease('srpm');
    await refused(
      'a foreign SRPM',
      await upload(s, 'glibc-1.0-1.src.rpm', 'srpm', foreign.get('glibc-1.0-1.src.rpm')!),
    );
    await refused(
      'a newer SRPM of the same name',
      await upload(s, 'victim-9.9-1.src.rpm', 'srpm', newer.get('victim-9.9-1.src.rpm')!),
    );
    await refused('a renamed SRPM', await upload(s, 'victim-1.0-2.src.rpm', 'srpm', own.get('victim-1.0-1.src.rpm')!));
    const good = await upload(s, 'victim-1.0-1.src.rpm', 'srpm', own.get('victim-1.0-1.src.rpm')!);
    assert.equal(good.status, 201, good.text);
    assert.equal(
      (
        await http(base, 'POST', `/api/v1/agent/leases/${s.id}/complete`, {
          token: agentToken,
          json: { fencingToken: s.fencingToken, outcome: { kind: 'success' } },
        })
      ).status,
      200,
    );

    // The x86_64 task: nothing but what the SRPM makes for x86_64.
    const b = await lease('binary');
    await refused(
      'a foreign package',
      await upload(b, 'glibc-1.0-1.x86_64.rpm', 'rpm', foreign.get('glibc-1.0-1.x86_64.rpm')!),
    );
    await refused(
      "a foreign package under the build's name",
      await upload(b, 'victim-1.0-1.x86_64.rpm', 'rpm', foreign.get('glibc-1.0-1.x86_64.rpm')!),
    );
    await refused(
      'a renamed package',
      await upload(b, 'hello-c-1.2-1.ppc64le.rpm', 'rpm', own.get('victim-1.0-1.x86_64.rpm')!),
    );
    await refused(
      'another arch',
      await upload(b, 'victim-1.0-1.ppc64le.rpm', 'rpm', own.get('victim-1.0-1.ppc64le.rpm')!),
    );
    await refused(
      'another version',
      await upload(b, 'victim-9.9-1.x86_64.rpm', 'rpm', newer.get('victim-9.9-1.x86_64.rpm')!),
    );
    await refused(
      'an SRPM from a binary task',
      await upload(b, 'victim-1.0-1.src.rpm', 'srpm', own.get('victim-1.0-1.src.rpm')!),
    );
    assert.equal(
      (
        await http(base, 'POST', `/api/v1/agent/leases/${b.id}/complete`, {
          token: agentToken,
          json: { fencingToken: b.fencingToken, outcome: { kind: 'success' } },
        })
      ).status,
      200,
    );

    const build = (await http(base, 'GET', `/api/v1/builds/${buildId}`)).json as {
      state: string;
      reasonCode: string;
      tasks: { kind: string; artifacts: { kind: string; name: string }[] }[];
    };
    assert.equal(build.state, 'failed');
    assert.equal(build.reasonCode, 'NO_PACKAGES');
    assert.deepEqual(
      build.tasks.flatMap((x) => x.artifacts.map((a) => a.name)),
      ['victim-1.0-1.src.rpm'],
      'nothing foreign was recorded',
    );
    assert.ok(!build.tasks.some((x) => x.kind === 'sign'), 'nothing to sign');

    const key = await generateKey(path.join(t.dir, 'keys'), 'evil-test', 'ed25519');
    assert.equal(
      (
        await http(base, 'POST', '/api/v1/keys', {
          token: admin,
          json: { publicKey: await exportPublicKey(path.join(t.dir, 'keys'), key.fingerprint) },
        })
      ).status,
      201,
    );
    const repoMade = await http(base, 'POST', '/api/v1/repos', {
      token: admin,
      json: { name: 'r', arches: ['x86_64'], keys: [key.fingerprint] },
    });
    assert.equal(repoMade.status, 201, repoMade.text);
    const rel = await http(base, 'POST', '/api/v1/releases', {
      token: admin,
      json: { repo: 'r', builds: [buildId], approve: true, override: 'ship it anyway' },
    });
    assert.deepEqual([rel.status, rel.json.code], [409, 'RELEASE_BLOCKED'], rel.text);

    // The refused uploads left blobs that no record points at; the collector removes them after the grace
    // period and keeps every referenced one.
    const { FsBlobStore } = await import('../src/store/blob-store.js');
    const store = new FsBlobStore(path.join(t.dir, 'data', 'blobs'));
    const rejected = [
      foreign.get('glibc-1.0-1.src.rpm')!,
      newer.get('victim-9.9-1.x86_64.rpm')!,
      own.get('victim-1.0-1.ppc64le.rpm')!,
    ].map(sha);
    const all = async () => {
      const out: string[] = [];
      for await (const s of store.list()) out.push(s);
      return out;
    };
    for (const r of rejected) assert.ok((await all()).includes(r), 'a refused upload is on disk until collected');
    const kept = await t.server.store.artifacts.referencedBlobs();
    assert.deepEqual(
      await store.collect(kept, Date.now(), 3_600_000),
      [],
      'nothing younger than the grace period goes',
    );
    const removed = await store.collect(kept, Date.now() + 2 * 3_600_000, 3_600_000);
    for (const r of rejected) assert.ok(removed.includes(r as never), 'refused uploads are collected');
    for (const k of kept) assert.ok((await all()).includes(k), 'referenced blobs stay');
  });
});
