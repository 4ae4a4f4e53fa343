import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { generateKey } from '../src/crypto/gpg.js';
import { Proc, freePort, gitRepo, lenix, specWith, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { type Build, flip, type Release, type ReleaseContext, type Task } from './support/release-context.js';
import { copiesScenario, errataScenario } from './support/release-scenarios.js';

const run = promisify(execFile);
const thisBoot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();

/**
 * Sign server, test system and release system as separate processes (as on separate machines), with real
 * gpg, rpmsign, createrepo_c and dnf.
 */
describe('sign, test and release', { timeout: 600_000 }, () => {
  let dir: string;
  let url: string;
  let port: number;
  let api: ApiClient;
  let admin: string;
  let server: Proc;
  let signer: Proc | null = null;
  let keysDir: string;
  let keyA: string;
  const procs: Proc[] = [];
  const env = () => ({ LENIX_CONFIG: path.join(dir, 'none.json'), LENIX_SERVER: url, LENIX_TOKEN: admin });
  const cli = (...args: string[]) => lenix(args, env());

  const startServer = async () => {
    server = new Proc(
      [
        'server',
        '--data',
        path.join(dir, 'server'),
        '--port',
        String(port),
        '--lease-seconds',
        '3',
        '--local-source-root',
        path.join(dir, 'repos'),
      ],
      {},
    );
    procs.push(server);
    url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
  };
  const agentToken = async (name: string, scope: string) =>
    (await api.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes: [scope] })).token;
  let signerToken = '';
  const startSigner = async () => {
    signerToken ||= await agentToken('signer', 'agent:sign');
    signer = new Proc(
      ['signer', '--server', url, '--token', signerToken, '--keys', keysDir, '--work', path.join(dir, 'signer-work')],
      { LENIX_CONFIG: path.join(dir, 'none.json') },
    );
    procs.push(signer);
    await signer.waitFor(/"msg":"registered"/);
  };
  const stopSigner = async () => {
    await signer?.stop('SIGTERM');
    signer = null;
  };
  const build = async (name: string) => (await api.json<Build>('POST', '/api/v1/builds', { source: name })).id;
  const getBuild = (id: number) => api.json<Build>('GET', `/api/v1/builds/${id}`);
  const lastTask = (b: Build, kind: string) => b.tasks.filter((t) => t.kind === kind).pop();
  const ended = (t?: Task) => t !== undefined && ['succeeded', 'failed', 'cancelled'].includes(t.state);
  const pipeline = (id: number) =>
    until(`build ${id} to be built, signed and tested`, async () => {
      const b = await getBuild(id);
      if (b.state === 'failed') return b;
      const sign = lastTask(b, 'sign');
      if (ended(sign) && sign!.state !== 'succeeded') return b;
      return ended(lastTask(b, 'test')) ? b : null;
    });
  const addSource = async (name: string, files: Record<string, string>) => {
    const repo = path.join(dir, 'repos', name);
    await gitRepo(repo, files);
    await api.json('POST', '/api/v1/sources', { name, url: repo });
    return repo;
  };
  const waitRelease = (id: number) =>
    until(`release ${id}`, async () => {
      const r = await api.json<Release>('GET', `/api/v1/releases/${id}`);
      return ['published', 'failed'].includes(r.state) ? r : null;
    });
  /** A dnf client of a repository as Lenix serves it, or (`mirror`) of its mirror tree as a plain folder. */
  const client = async (name: string, repo: string, o: { mirror?: boolean } = {}) => {
    const reposDir = path.join(dir, 'clients', name, 'repos.d');
    await mkdir(reposDir, { recursive: true });
    let file = await (await fetch(`${url}/repos/${repo}.repo`)).text();
    if (o.mirror) {
      assert.match(file, /^metalink=/m);
      file = file.replace(/^metalink=.*$/m, `baseurl=file://${dir}/server/repos/${repo}/mirror/$basearch/`);
    }
    await writeFile(path.join(reposDir, `${repo}.repo`), file);
    const c = new DnfClient(path.join(dir, 'clients', name), reposDir);
    const hostBase = path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm');
    await c.base(hostBase);
    return c;
  };

  const ctx: ReleaseContext = {
    get dir() {
      return dir;
    },
    get url() {
      return url;
    },
    get api() {
      return api;
    },
    cli,
    build,
    lastTask,
    pipeline,
    addSource,
    client,
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-rel-'));
    port = await freePort();
    await startServer();
    admin = (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim();
    api = new ApiClient(url, admin);
    keysDir = path.join(dir, 'keys');
    keyA = (await generateKey(keysDir, 'key-a', 'ed25519')).fingerprint;
    const node = new Proc(
      [
        'node',
        '--server',
        url,
        '--token',
        await agentToken('node', 'agent:build'),
        '--work',
        path.join(dir, 'node-work'),
      ],
      { LENIX_CONFIG: path.join(dir, 'none.json') },
    );
    const tester = new Proc(
      [
        'tester',
        '--server',
        url,
        '--token',
        await agentToken('tester', 'agent:test'),
        '--work',
        path.join(dir, 'tester-work'),
      ],
      { LENIX_CONFIG: path.join(dir, 'none.json') },
    );
    procs.push(node, tester);
    await Promise.all([node.waitFor(/"msg":"registered"/), tester.waitFor(/"msg":"registered"/)]);
    await startSigner();
    assert.equal((await api.json<{ signingKey: string }>('GET', '/api/v1/keys')).signingKey, keyA);
    assert.equal((await cli('repo', 'create', 'r1', '--arch', 'x86_64', '--key', keyA)).code, 0);
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a failing tests/ script and a failing removal block the release; an override with a reason publishes it and keeps the reason', async () => {
    await addSource('gated', {
      // Its %preun fails, so the package cannot be removed: the remove stage says so.
      'gated.spec': specWith('gated', 'echo build').replace(
        '%files\n',
        '%preun\necho "preun refuses"; exit 1\n\n%files\n',
      ),
      'tests/01-check.sh':
        '#!/bin/sh\necho "checking /usr/share/gated/ok"\ntest -f /usr/share/gated/ok || exit 1\necho "1..1"\necho "not ok 1 - the package knows it is broken"\n',
    });
    await run('chmod', ['+x', path.join(dir, 'repos', 'gated', 'tests', '01-check.sh')]);
    await run(
      'git',
      [
        '-C',
        path.join(dir, 'repos', 'gated'),
        '-c',
        'user.name=t',
        '-c',
        'user.email=t@t',
        'commit',
        '-qam',
        'exec bit',
      ],
      {},
    ).catch(() => undefined);
    const id = await build('gated');
    const b = await pipeline(id);
    const t = lastTask(b, 'test')!;
    assert.equal(t.state, 'failed');
    assert.equal(t.reasonCode, 'TESTS_FAILED');
    assert.match(t.reason!, /tests: failed: 01-check\.sh\(1 TAP failures\)/);
    assert.match(t.reason!, /remove: rpm -e: .*%preun\(gated-1\.0-1\.noarch\) scriptlet failed, exit status 1/);
    const log = await (await fetch(`${url}/api/v1/tasks/${t.id}/log`)).text();
    for (const stage of ['root', 'install', 'verify', 'tests', 'remove', 'rpmlint'])
      assert.match(log, new RegExp(`^lenix: ${stage} took \\d+\\.\\d\\d s$`, 'm'), `the log times the ${stage} stage`);
    const blocked = await cli('release', String(id), '--to', 'r1', '--approve');
    assert.equal(blocked.code, 5);
    assert.match(blocked.stderr, /^lenix: RELEASE_BLOCKED: .*has not passed its tests/);
    assert.equal((await api.json<{ releases: unknown[] }>('GET', '/api/v1/releases')).releases.length, 0);
    const forced = await cli(
      'release',
      String(id),
      '--to',
      'r1',
      '--approve',
      '--override',
      'TAP test 1 is known broken upstream (bug 42)',
      '--wait',
      '--json',
    );
    assert.equal(forced.code, 0, forced.stderr);
    const rel = JSON.parse(forced.stdout) as Release;
    assert.equal(rel.state, 'published');
    assert.equal(rel.overrideReason, 'TAP test 1 is known broken upstream (bug 42)');
    const c = await client('gated', 'r1');
    const r = await c.dnf('install gated');
    assert.equal(r.code, 0, r.out);
  });

  test('a flipped byte in an unsigned RPM is refused by the signer and nothing is published', async () => {
    await stopSigner();
    await addSource('corrupt', { 'corrupt.spec': specWith('corrupt', 'echo build') });
    const id = await build('corrupt');
    const b = await until('build', async () => ((await getBuild(id)).state === 'succeeded' ? getBuild(id) : null));
    const rpm = b.tasks.flatMap((t) => t.artifacts).find((a) => a.kind === 'rpm')!;
    const blob = path.join(dir, 'server', 'blobs', rpm.sha256.slice(0, 2), rpm.sha256.slice(2));
    const bytes = await readFile(blob);
    flip(bytes);
    await unlink(blob); // the blob is hard-linked nowhere yet, but replace it rather than write through
    await writeFile(blob, bytes);
    await startSigner();
    const after = await until('sign task to end', async () => {
      const x = await getBuild(id);
      return ended(lastTask(x, 'sign')) ? x : null;
    });
    const sign = lastTask(after, 'sign')!;
    assert.equal(sign.state, 'failed');
    assert.equal(sign.reasonCode, 'ARTIFACT_DIGEST_MISMATCH');
    assert.equal(
      after.tasks.flatMap((t) => t.artifacts).filter((a) => a.kind.startsWith('signed-')).length,
      0,
      'nothing was signed',
    );
    const refused = await cli('release', String(id), '--to', 'r1', '--approve', '--override', 'try anyway');
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /RELEASE_BLOCKED: .*not signed/);
  });

  test('a flipped byte in an RPM on a mirror makes dnf refuse it', async () => {
    const pkgDir = path.join(dir, 'server', 'repos', 'r1', 'mirror', 'x86_64', 'Packages');
    // The mirror tree follows a publish: wait for the package to be in it.
    const name = await until('gated in the mirror tree', async () =>
      (await readdir(pkgDir).catch(() => [] as string[])).find((f) => f.startsWith('gated-')),
    );
    const file = path.join(pkgDir, name);
    const bytes = await readFile(file);
    flip(bytes);
    await writeFile(file, bytes);
    const c = await client('tampered', 'r1', { mirror: true });
    const r = await c.dnf('install gated');
    assert.notEqual(r.code, 0, 'dnf must refuse the tampered package');
    assert.doesNotMatch(r.out, /^Complete!$/m);
    flip(bytes);
    await writeFile(file, bytes); // restore for the tests that follow
  });

  test('packages are served from the blob store by digest, never corrupt; the mirror tree is a checked copy; lenix fsck finds and repairs both', () =>
    copiesScenario(ctx));

  test('kill -9 of the server mid-publish, then a machine restart: clients keep the old snapshot, the publish is built again and completes', async () => {
    await addSource('atomic', { 'atomic.spec': specWith('atomic', 'echo build') });
    const id = await build('atomic');
    const tested = lastTask(await pipeline(id), 'test');
    assert.equal(tested?.state, 'succeeded', `${tested?.reasonCode}: ${tested?.reason}`);
    await stopSigner(); // the publish will wait for its metadata signature
    const rel = await api.json<Release>('POST', '/api/v1/releases', { repo: 'r1', builds: [id], approve: true });
    const signing = await until('snapshot built and waiting for its signature', async () => {
      const r = await api.json<{ snapshots: { id: number; state: string }[] }>('GET', '/api/v1/repos/r1');
      return r.snapshots.find((s) => s.state === 'signing');
    });
    server.child.kill('SIGKILL');
    await server.wait();
    const tmp = path.join(dir, 'server', 'repos', 'r1', 'snapshots', `${signing.id}.tmp`);
    assert.equal(existsSync(tmp), true, 'the new snapshot was half-way');
    // As if the machine had restarted before its unsynced files reached the disk: another boot, and a primary
    // file lost. Publishing that folder would break dnf; it must be built again.
    const bootFile = path.join(tmp, '.boot-id');
    assert.equal(await readFile(bootFile, 'utf8'), thisBoot);
    await writeFile(bootFile, 'an earlier boot');
    const repodata = path.join(tmp, 'x86_64', 'repodata');
    for (const f of await readdir(repodata))
      if (f.endsWith('-primary.xml.gz')) await writeFile(path.join(repodata, f), '');
    await startServer();
    const c = await client('atomic', 'r1');
    const old = await c.dnf('--refresh list --available');
    assert.equal(old.code, 0, old.out);
    assert.doesNotMatch(old.out, /^atomic\./m, 'clients still see the old snapshot');
    await startSigner();
    const done = await waitRelease(rel.id);
    assert.equal(done.state, 'published', `${done.reasonCode}: ${done.reason}`);
    const now = await c.dnf('--refresh install atomic');
    assert.equal(now.code, 0, now.out);
    const live = path.join(dir, 'server', 'repos', 'r1', 'snapshots', String(done.snapshot));
    assert.equal(await readFile(path.join(live, '.boot-id'), 'utf8'), thisBoot, 'built again in this boot');
  });

  test('rollback switches clients back to the previous snapshot', async () => {
    const r = await cli('repo', 'rollback', 'r1');
    assert.equal(r.code, 0, r.stderr);
    const c = await client('rollback', 'r1');
    const list = await c.dnf('--refresh list --available');
    assert.equal(list.code, 0, list.out);
    assert.doesNotMatch(list.out, /^atomic\./m);
    assert.match(list.out, /^gated\./m);
  });

  test('key rotation with overlap keeps the repository installable from its .repo file, before and after', async () => {
    // One version kept: once 1.1 (key B) replaces 1.0 (key A), nothing signed by key A is left to keep it in use.
    assert.equal(
      (await cli('repo', 'create', 'r2', '--arch', 'x86_64', '--key', keyA, '--keep-versions', '1')).code,
      0,
    );
    const repo = await addSource('rot', { 'rot.spec': specWith('rot', 'echo build') });
    const v1 = await build('rot');
    assert.equal(lastTask(await pipeline(v1), 'test')!.state, 'succeeded');
    assert.equal(
      JSON.parse((await cli('release', String(v1), '--to', 'r2', '--approve', '--wait', '--json')).stdout).state,
      'published',
    );
    const first = await client('rot-before', 'r2');
    assert.equal((await first.dnf('install rot')).code, 0);

    // Key B: generated in the signer's folder, announced by the signer, added to the repository (overlap),
    // then used for new builds.
    const keyB = (await generateKey(keysDir, 'key-b', 'ed25519')).fingerprint;
    await stopSigner();
    await startSigner();
    assert.equal((await cli('repo', 'keys', 'r2', '--add', keyB)).code, 0);
    const overlapFile = await (await fetch(`${url}/repos/r2.repo`)).text();
    assert.ok(overlapFile.includes(keyA) && overlapFile.includes(keyB), 'during the overlap the .repo lists both keys');
    assert.equal((await cli('keys', 'use', keyB)).code, 0);
    const retireEarly = await cli('repo', 'keys', 'r2', '--retire', keyA);
    assert.equal(retireEarly.code, 5, 'key A still signs the current packages');
    assert.match(retireEarly.stderr, /KEY_IN_USE/);

    await writeFile(path.join(repo, 'rot.spec'), specWith('rot', 'echo build').replace('Version: 1.0', 'Version: 1.1'));
    await gitRepo(repo, {}, 'rot 1.1');
    const v2 = await build('rot');
    const b2 = await pipeline(v2);
    assert.equal(lastTask(b2, 'test')!.state, 'succeeded');
    assert.equal(
      JSON.parse((await cli('release', String(v2), '--to', 'r2', '--approve', '--wait', '--json')).stdout).state,
      'published',
    );
    const during = await client('rot-during', 'r2');
    assert.equal((await during.dnf('install rot')).code, 0);
    assert.equal((await cli('repo', 'keys', 'r2', '--retire', keyA)).code, 0);
    const afterFile = await (await fetch(`${url}/repos/r2.repo`)).text();
    assert.ok(!afterFile.includes(keyA) && afterFile.includes(keyB));
    const later = await client('rot-after', 'r2');
    const r = await later.dnf('install rot');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /rot-1\.1-1\.noarch/);
    const upgraded = await first.dnf('--refresh upgrade rot');
    assert.equal(upgraded.code, 0, upgraded.out);
  });

  test("a dependency is resolved from the target repository's snapshot, and named when nothing provides it", async () => {
    await addSource('needsrot', {
      'needsrot.spec': specWith('needsrot', 'echo build', { extra: 'Requires: rot >= 1.1\n' }),
    });
    const alone = (await api.json<Build>('POST', '/api/v1/builds', { source: 'needsrot' })).id;
    const t1 = lastTask(await pipeline(alone), 'test')!;
    assert.equal(t1.state, 'failed');
    assert.match(t1.reason!, /install: nothing provides rot >= 1\.1 needed by needsrot-1\.0-1\.noarch/);
    const targeted = await cli('build', 'needsrot', '--repo', 'r2', '--json');
    assert.equal(targeted.code, 0, targeted.stderr);
    const t2 = lastTask(await pipeline((JSON.parse(targeted.stdout) as { id: number }).id), 'test')!;
    assert.equal(t2.state, 'succeeded', `${t2.reasonCode}: ${t2.reason}`);
    const noRepo = await cli('build', 'needsrot', '--repo', 'nope');
    assert.equal(noRepo.code, 4);
  });
  test('errata: dnf updateinfo and update --security/--advisory/--sec-severity follow a released advisory; OVAL and OSV agree', () =>
    errataScenario(ctx));
});
