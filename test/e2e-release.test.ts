import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { generateKey } from '../src/crypto/gpg.js';
import { Proc, freePort, gitRepo, lenix, specWith, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { osvErrors } from './support/schemas.js';

const run = promisify(execFile);
/** Flip one byte near the end (in the payload). */
const flip = (b: Buffer) => b.writeUInt8(b.readUInt8(b.length - 100) ^ 0xff, b.length - 100);

type Task = {
  id: number;
  kind: string;
  state: string;
  reasonCode: string | null;
  reason: string | null;
  artifacts: { kind: string; name: string; sha256: string }[];
};
type Build = { id: number; state: string; tasks: Task[] };
type Release = {
  id: number;
  state: string;
  overrideReason: string | null;
  reasonCode: string | null;
  reason: string | null;
  snapshot: number | null;
};

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
  const client = async (name: string, repo: string) => {
    const reposDir = path.join(dir, 'clients', name, 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, `${repo}.repo`), await (await fetch(`${url}/repos/${repo}.repo`)).text());
    const c = new DnfClient(path.join(dir, 'clients', name), reposDir);
    const hostBase = path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm');
    await c.base(hostBase);
    return c;
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

  test('a failing tests/ script blocks the release; an override with a reason publishes it and keeps the reason', async () => {
    await addSource('gated', {
      'gated.spec': specWith('gated', 'echo build'),
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

  test('a flipped byte in a published RPM makes dnf refuse it', async () => {
    const pkgDir = path.join(dir, 'server', 'repos', 'r1', 'current', 'x86_64', 'Packages');
    const file = path.join(pkgDir, (await readdir(pkgDir)).find((f) => f.startsWith('gated-'))!);
    const bytes = await readFile(file);
    flip(bytes);
    await writeFile(file, bytes);
    const c = await client('tampered', 'r1');
    const r = await c.dnf('install gated');
    assert.notEqual(r.code, 0, 'dnf must refuse the tampered package');
    assert.doesNotMatch(r.out, /^Complete!$/m);
    flip(bytes);
    await writeFile(file, bytes); // restore for the tests that follow
  });

  test('published packages are copies: a corrupt blob leaves them whole, a corrupt copy is not served, lenix fsck finds and repairs both', async () => {
    const pkgDir = path.join(dir, 'server', 'repos', 'r1', 'current', 'x86_64', 'Packages');
    const name = (await readdir(pkgDir)).find((f) => f.startsWith('gated-'))!;
    const file = path.join(pkgDir, name);
    const digest = async (f: string) =>
      createHash('sha256')
        .update(await readFile(f))
        .digest('hex');
    const sha = await digest(file);
    const blob = path.join(dir, 'server', 'blobs', sha.slice(0, 2), sha.slice(2));
    const [pub, blobSt] = [await stat(file), await stat(blob)];
    assert.notEqual(pub.ino, blobSt.ino, 'not a hard link to the blob');
    assert.equal(pub.mode & 0o777, 0o644, 'readable by mirrors running as another user');
    const served = async () => {
      const r = await fetch(`${url}/repos/r1/x86_64/Packages/${name}`);
      return {
        status: r.status,
        sha: createHash('sha256')
          .update(Buffer.from(await r.arrayBuffer()))
          .digest('hex'),
      };
    };
    const fsckRun = async (...extra: string[]) => {
      const r = await cli('fsck', '--data', path.join(dir, 'server'), '--json', ...extra);
      return {
        code: r.code,
        report: JSON.parse(r.stdout) as {
          clean: boolean;
          problems: { kind: string; problem: string; sha256: string; repair: string | null }[];
        },
      };
    };
    // (An earlier test left an unsigned blob corrupt on purpose; these checks look at this package's digest.)
    const mine = (r: Awaited<ReturnType<typeof fsckRun>>) => r.report.problems.filter((q) => q.sha256 === sha);
    assert.deepEqual(mine(await fsckRun()), [], 'nothing wrong with this package to begin with');

    // A flipped byte in the blob store: the snapshot is unchanged and keeps being served.
    const b = await readFile(blob);
    flip(b);
    await writeFile(blob, b);
    assert.deepEqual(await served(), { status: 200, sha });
    // A flipped byte in the published copy: refused, not served.
    const p = await readFile(file);
    flip(p);
    await writeFile(file, p);
    const bad = await fetch(`${url}/repos/r1/x86_64/Packages/${name}`);
    assert.deepEqual([bad.status, ((await bad.json()) as { code: string }).code], [500, 'BLOB_CORRUPT']);

    const found = await fsckRun();
    assert.equal(found.code, 1);
    assert.deepEqual(
      mine(found)
        .map((q) => [q.kind, q.problem])
        .sort(),
      [
        ['blob', 'corrupt'],
        ['published', 'corrupt'],
      ],
    );
    // Both copies bad: nothing to repair from until one is good again. Put the blob back by hand, then repair.
    flip(b);
    await writeFile(blob, b);
    const repaired = await fsckRun('--repair');
    assert.match(
      repaired.report.problems.find((q) => q.kind === 'published' && q.sha256 === sha)!.repair ?? '',
      /^restored from /,
    );
    assert.deepEqual(await served(), { status: 200, sha });
    assert.equal(await digest(file), sha);

    // A bad blob is restored from a good published copy.
    flip(b);
    await writeFile(blob, b);
    const blobRepair = await fsckRun('--repair');
    assert.match(
      blobRepair.report.problems.find((q) => q.kind === 'blob' && q.sha256 === sha)!.repair ?? '',
      /^restored from /,
    );
    assert.equal(await digest(blob), sha);
    assert.deepEqual(mine(await fsckRun()), [], 'clean again');
    // Metadata is checked too: a changed primary.xml is named (it is rebuilt by republishing, not from a blob).
    const repodata = path.join(dir, 'server', 'repos', 'r1', 'current', 'x86_64', 'repodata');
    const primary = path.join(repodata, (await readdir(repodata)).find((f) => f.endsWith('primary.xml.gz'))!);
    const original = await readFile(primary);
    await writeFile(primary, Buffer.concat([original, Buffer.from('x')]));
    const meta = await fsckRun();
    assert.equal(meta.code, 1);
    assert.ok(
      meta.report.problems.some((q) => q.kind === 'metadata' && q.problem === 'corrupt'),
      JSON.stringify(meta.report.problems),
    );
    await writeFile(primary, original);
    assert.ok(!(await fsckRun()).report.problems.some((q) => q.kind === 'metadata'));

    // A publish that fails (here: the blob is corrupt) marks its snapshot failed and leaves no .tmp folder.
    const c = await readFile(blob);
    flip(c);
    await writeFile(blob, c);
    const failed = await cli('repo', 'republish', 'r1', '--wait', '--json');
    assert.equal(failed.code, 1);
    const rel = JSON.parse(failed.stdout) as Release;
    assert.deepEqual([rel.state, rel.reasonCode], ['failed', 'BLOB_CORRUPT']);
    const snaps = await api.json<{ snapshots: { id: number; state: string }[] }>('GET', '/api/v1/repos/r1');
    assert.equal(snaps.snapshots.find((x) => x.id === rel.snapshot)?.state, 'failed');
    assert.deepEqual(
      (await readdir(path.join(dir, 'server', 'repos', 'r1', 'snapshots'))).filter((f) => f.endsWith('.tmp')),
      [],
    );
    flip(c);
    await writeFile(blob, c);
    assert.equal(await digest(blob), sha);
  });

  test('kill -9 of the server mid-publish: clients keep the old snapshot, the publish completes after restart', async () => {
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
    assert.equal(
      existsSync(path.join(dir, 'server', 'repos', 'r1', 'snapshots', `${signing.id}.tmp`)),
      true,
      'the new snapshot was half-way',
    );
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
    assert.equal((await cli('repo', 'create', 'r2', '--arch', 'x86_64', '--key', keyA)).code, 0);
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
  test('errata: dnf updateinfo and update --security/--advisory/--sec-severity follow a released advisory; OVAL and OSV agree', async () => {
    // A repository set up as an AlmaLinux-style product: AL prefix (ALSA ids), OSV ecosystem AlmaLinux:9.
    assert.equal(
      (await cli('repo', 'create', 'er', '--arch', 'x86_64', '--errata-prefix', 'AL', '--osv-ecosystem', 'AlmaLinux:9'))
        .code,
      0,
    );
    const spec = (name: string, version: string) =>
      specWith(name, 'echo build').replace('Version: 1.0', `Version: ${version}`).replace('- 1.0-1', `- ${version}-1`);
    const pRepo = await addSource('erp', { 'erp.spec': spec('erp', '1.0') });
    const qRepo = await addSource('erq', { 'erq.spec': spec('erq', '1.0') });
    const v1 = [await build('erp'), await build('erq')];
    for (const id of v1) assert.equal(lastTask(await pipeline(id), 'test')!.state, 'succeeded');
    const first = JSON.parse(
      (await cli('release', String(v1[0]), String(v1[1]), '--to', 'er', '--approve', '--wait', '--json')).stdout,
    ) as Release;
    assert.equal(first.state, 'published');
    const installed = async (name: string) => {
      const c = await client(name, 'er');
      const r = await c.dnf('install erp erq');
      assert.equal(r.code, 0, r.out);
      return c;
    };
    const host = await installed('er-security');
    const byAdvisory = await installed('er-advisory');
    const critical = await installed('er-critical');

    await writeFile(path.join(pRepo, 'erp.spec'), spec('erp', '1.1'));
    await gitRepo(pRepo, {}, 'erp 1.1');
    await writeFile(path.join(qRepo, 'erq.spec'), spec('erq', '2.0'));
    await gitRepo(qRepo, {}, 'erq 2.0');
    const p11 = await build('erp');
    const q20 = await build('erq');
    for (const id of [p11, q20]) assert.equal(lastTask(await pipeline(id), 'test')!.state, 'succeeded');

    // Bad input changes nothing: each is refused with its code.
    const count = async () =>
      JSON.parse((await cli('errata', 'list', '--repo', 'er', '--json')).stdout).length as number;
    const refused = async (code: string, ...args: string[]) => {
      const r = await cli('errata', 'create', '--repo', 'er', ...args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, new RegExp(`^lenix: ${code}: `, 'm'), args.join(' '));
    };
    await refused(
      'ERRATA_INVALID',
      '--type',
      'security',
      '--severity',
      'Important',
      '--title',
      'x',
      '--cve',
      'CVE-26-1',
      '--from-build',
      String(p11),
    );
    await refused('ERRATA_INVALID', '--type', 'security', '--title', 'no severity', '--from-build', String(p11));
    await refused('ERRATA_PACKAGE_UNKNOWN', '--type', 'bugfix', '--title', 'x', '--package', 'erp-9.9-1.noarch');
    // Text that XML cannot carry never reaches updateinfo, OVAL or the feed (NUL cannot be a command-line argument; the property test in errata.test.ts covers it).
    for (const title of ['bell\u0007title', 'form\u000cfeed', 'not a char \uffff'])
      await refused('ERRATA_INVALID', '--type', 'bugfix', '--title', title, '--from-build', String(p11));
    assert.equal(await count(), 0);

    const created = await cli(
      'errata',
      'create',
      '--repo',
      'er',
      '--type',
      'security',
      '--severity',
      'Important',
      '--title',
      'erp security update',
      '--synopsis',
      'Important: erp security update',
      '--description',
      'Fixes a flaw in erp.',
      '--cve',
      'CVE-2026-12345',
      '--bug',
      'https://bugs.example.org/show_bug.cgi?id=4242',
      '--from-build',
      String(p11),
      '--json',
    );
    assert.equal(created.code, 0, created.stderr);
    const adv = JSON.parse(created.stdout) as { id: string; status: string };
    assert.match(adv.id, /^ALSA-\d{4}:\d{4}$/);
    await refused(
      'ERRATA_EXISTS',
      '--id',
      adv.id,
      '--type',
      'security',
      '--severity',
      'Low',
      '--title',
      'again',
      '--from-build',
      String(p11),
    );
    assert.equal(await count(), 1);
    // Drafts are not public.
    assert.equal((await fetch(`${url}/api/v1/errata/${adv.id}`)).status, 404);
    assert.equal((await cli('errata', 'approve', adv.id)).code, 0);
    const second = JSON.parse(
      (await cli('release', String(p11), String(q20), '--to', 'er', '--approve', '--wait', '--json')).stdout,
    ) as Release;
    assert.equal(second.state, 'published');
    const shown = (await (await fetch(`${url}/api/v1/errata/${adv.id}`)).json()) as {
      status: string;
      packages: { nevra: string }[];
    };
    assert.equal(shown.status, 'released');
    assert.deepEqual(
      shown.packages.map((p) => p.nevra),
      ['erp-1.1-1.noarch'],
    );

    // What real dnf makes of it.
    const list = await host.dnf('--refresh updateinfo list --security');
    assert.equal(list.code, 0, list.out);
    const lines = list.out.split('\n').filter((l) => /^\S+-\d{4}:\d+ /.test(l));
    assert.deepEqual(
      lines.map((l) => l.trim().split(/\s+/)),
      [[adv.id, 'Important/Sec.', 'erp-1.1-1.noarch']],
    );
    const info = await host.dnf(`updateinfo info ${adv.id}`);
    assert.match(info.out, /CVE-2026-12345/);
    assert.match(info.out, /Severity: Important/);
    assert.match(info.out, /Type: security/);
    const noneCritical = await critical.dnf('--refresh update --sec-severity=Critical');
    assert.equal(noneCritical.code, 0, noneCritical.out);
    assert.doesNotMatch(noneCritical.out, /Upgrading:|Upgraded:/);

    // OVAL before the update: the definition is true (erp 1.0 installed, signed by the repository key).
    const ovalFile = path.join(dir, 'er.oval.xml');
    await writeFile(ovalFile, await (await fetch(`${url}/errata/oval/er.xml`)).text());
    const validate = await run('oscap', ['oval', 'validate', ovalFile]).then(
      () => ({ code: 0, out: '' }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
    assert.equal(validate.code, 0, validate.out);
    const evalOval = async (c: DnfClient) => (await c.sh(`OSCAP_PROBE_ROOT="$ROOT" oscap oval eval "${ovalFile}"`)).out;
    const defLine = (out: string) => /Definition oval:[^:]+:def:\d+: (true|false)/.exec(out)?.[1];
    assert.equal(defLine(await evalOval(host)), 'true', 'vulnerable before the update');

    const sec = await host.dnf('update --security');
    assert.equal(sec.code, 0, sec.out);
    const q = await host.sh('rpm --root "$ROOT" -q erp erq');
    assert.match(q.out, /erp-1\.1-1\.noarch/);
    assert.match(q.out, /erq-1\.0-1\.noarch/, '--security leaves the plain update alone');
    assert.equal(defLine(await evalOval(host)), 'false', 'not vulnerable after it');

    const advisory = await byAdvisory.dnf(`--refresh update --advisory ${adv.id}`);
    assert.equal(advisory.code, 0, advisory.out);
    const q2 = await byAdvisory.sh('rpm --root "$ROOT" -q erp erq');
    assert.match(q2.out, /erp-1\.1-1\.noarch/);
    assert.match(q2.out, /erq-1\.0-1\.noarch/);

    // OSV record validates against the official schema; the feed names the advisory.
    const osv = (await (await fetch(`${url}/errata/osv/${adv.id}.json`)).json()) as {
      id: string;
      affected: { package: { ecosystem: string; name: string }; ranges: { events: Record<string, string>[] }[] }[];
    };
    assert.equal(osvErrors(osv), null);
    assert.equal(osv.id, adv.id);
    assert.deepEqual(
      osv.affected.map((a) => [a.package.ecosystem, a.package.name, a.ranges[0]!.events]),
      [['AlmaLinux:9', 'erp', [{ introduced: '0' }, { fixed: '1.1-1' }]]],
    );
    assert.match(await (await fetch(`${url}/errata/feed.atom`)).text(), new RegExp(adv.id));

    // Import: an upstream updateinfo proposes drafts for what Lenix built at that version or later.
    const upstream = path.join(dir, 'upstream-updateinfo.xml');
    await writeFile(
      upstream,
      `<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="upstream@example.org" status="final" type="bugfix" version="2">
    <id>RHBA-2026:1234</id><title>erq bug fix update</title><issued date="2026-11-02 00:00:00"/><severity>None</severity>
    <description>Fixes erq.</description>
    <references><reference href="https://bugs.example.org/show_bug.cgi?id=77" id="77" type="bugzilla" title="bug 77"/></references>
    <pkglist><collection short="c"><name>c</name>
      <package name="erq" epoch="0" version="1.9" release="1" arch="noarch" src="erq-1.9-1.src.rpm"><filename>erq-1.9-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="upstream@example.org" status="final" type="security" version="1">
    <id>RHSA-2026:0099</id><title>nothere security update</title><issued date="2026-11-02 00:00:00"/><severity>Critical</severity>
    <references><reference href="https://www.cve.org/CVERecord?id=CVE-2026-9999" id="CVE-2026-9999" type="cve" title="CVE-2026-9999"/></references>
    <pkglist><collection short="c"><name>c</name>
      <package name="nothere" epoch="0" version="1.0" release="1" arch="noarch" src="nothere-1.0-1.src.rpm"><filename>nothere-1.0-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
`,
    );
    const imported = await cli('errata', 'import', upstream, '--repo', 'er', '--json');
    assert.equal(imported.code, 0, imported.stderr);
    const got = JSON.parse(imported.stdout) as {
      proposed: { id: string; status: string; upstreamId: string; packages: { nevra: string }[] }[];
      skipped: { upstream: string; why: string }[];
    };
    assert.deepEqual(
      got.proposed.map((a) => [a.status, a.upstreamId, a.packages.map((p) => p.nevra)]),
      [['draft', 'RHBA-2026:1234', ['erq-2.0-1.noarch']]],
    );
    assert.match(got.proposed[0]!.id, /^ALBA-\d{4}:\d{4}$/);
    assert.deepEqual(
      got.skipped.map((x) => x.upstream),
      ['RHSA-2026:0099'],
    );
    const again = JSON.parse((await cli('errata', 'import', upstream, '--repo', 'er', '--json')).stdout) as typeof got;
    assert.deepEqual(again.proposed, []);
    assert.match(again.skipped.find((x) => x.upstream === 'RHBA-2026:1234')!.why, /already imported/);

    // The proposal names erq-2.0-1, which is already published: approved, it goes out with a republish.
    const bugfix = got.proposed[0]!.id;
    assert.equal((await cli('errata', 'approve', bugfix)).code, 0);
    const republished = await cli('repo', 'republish', 'er', '--wait', '--json');
    assert.equal(republished.code, 0, republished.stderr);
    assert.equal(
      ((await (await fetch(`${url}/api/v1/errata/${bugfix}`)).json()) as { status: string }).status,
      'released',
    );
    const bugfixes = await host.dnf('--refresh updateinfo list --bugfix');
    assert.match(
      bugfixes.out,
      new RegExp(`^${bugfix.replace(/[:.]/g, '\\$&')} +bugfix +erq-2\\.0-1\\.noarch$`, 'm'),
      bugfixes.out,
    );
  });
});
