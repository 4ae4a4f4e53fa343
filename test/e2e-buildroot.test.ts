import assert from 'node:assert/strict';
import { createReadStream, existsSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../src/client/http.js';
import { LenixClient } from '../src/client/lenix.js';
import { exportPublicKey, generateKey } from '../src/crypto/gpg.js';
import { rpmsign } from '../src/rpm/tools.js';
import { APPLICATION, cyclic, DYNAMIC, LIBRARY, SLOW } from './support/buildroot-packages.js';
import { Proc, freePort, gitRepo, lenix, specWith, until } from './support/cli.js';

const run = promisify(execFile);
import { DnfClient } from './support/dnf.js';
import { attack, hostListener, MARKER_DIRS, secretsFound } from './support/hostile.js';

type Task = {
  id: number;
  kind: string;
  arch: string;
  state: string;
  reasonCode: string | null;
  reason: string | null;
  artifacts: { kind: string; name: string; sha256: string }[];
};
type Build = { id: number; state: string; reasonCode: string | null; reason: string | null; tasks: Task[] };
type Installed = { nevra: string; sha256: string; repo: string; snapshotId: number | null };

/**
 * Buildroots from the distribution's own repositories (issue 14): a library and a program that BuildRequires
 * it through pkg-config, built by a target whose build repository Lenix keeps current itself, with real dnf,
 * rpmbuild, gpg and createrepo_c, and separate server, node, signer and tester processes.
 */
describe('buildroots from the target repositories', { timeout: 900_000 }, () => {
  let dir: string;
  let url: string;
  let api: ApiClient;
  let lx: LenixClient;
  let admin: string;
  let appBuild = 0;
  let firstNode: Proc | null = null;
  let agent: (role: string, scope: string, extra?: string[]) => Promise<Proc>;
  const procs: Proc[] = [];
  const env = () => ({ LENIX_CONFIG: path.join(dir, 'none.json'), LENIX_SERVER: url, LENIX_TOKEN: admin });
  const cli = (...args: string[]) => lenix(args, env());
  const getBuild = (id: number) => api.json<Build>('GET', `/api/v1/builds/${id}`);
  const finished = (id: number) =>
    until(`build ${id} to finish`, async () => {
      const b = await getBuild(id);
      return ['succeeded', 'failed', 'cancelled'].includes(b.state) ? b : null;
    });
  const addSource = async (name: string, files: Record<string, string>) => {
    const repo = path.join(dir, 'repos', name);
    await gitRepo(repo, files);
    await api.json('POST', '/api/v1/sources', { name, url: repo });
  };
  const build = async (name: string) =>
    (await api.json<{ id: number }>('POST', '/api/v1/builds', { source: name, target: 'lx9' })).id;
  const binaryResult = async (id: number) => {
    const b = await getBuild(id);
    const t = b.tasks.filter((x) => x.kind === 'binary').pop()!;
    const task = await api.json<{ buildroot: { installed?: Installed[]; cached?: boolean; target?: string } }>(
      'GET',
      `/api/v1/tasks/${t.id}`,
    );
    return { result: task };
  };
  /** Why a build ended as it did: each task's state and reason, and the end of a failed task's log. */
  const explain = async (b: Build) => {
    const failed = b.tasks.find((t) => t.state === 'failed');
    const log = failed ? (await (await fetch(`${url}/api/v1/tasks/${failed.id}/log`)).text()).slice(-4000) : '';
    return `${JSON.stringify(b.tasks.map((t) => [t.kind, t.state, t.reason]))}\n${log}`;
  };
  /** Wait until the build repository's current snapshot holds a package of this name. */
  const landed = (name: string) =>
    until(`${name} in the build repository`, async () => {
      const repo = await lx.repos.get('lx9-build');
      const snap = repo.snapshots.find((s) => s.id === repo.currentSnapshot);
      return snap && JSON.stringify(snap).includes(name) ? repo : null;
    });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-broot-'));
    const port = await freePort();
    const server = new Proc(
      [
        'server',
        '--data',
        path.join(dir, 'server'),
        '--port',
        String(port),
        '--local-source-root',
        path.join(dir, 'repos'),
      ],
      {},
    );
    procs.push(server);
    url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
    admin = (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim();
    api = new ApiClient(url, admin);
    lx = new LenixClient(api);
    const token = async (name: string, scope: string) =>
      (await api.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes: [scope] })).token;
    const keysDir = path.join(dir, 'keys');
    await generateKey(keysDir, 'lx9-key', 'ed25519');
    agent = async (role: string, scope: string, extra: string[] = []) => {
      const p = new Proc([role, '--server', url, '--token', await token(role, scope), ...extra], {
        LENIX_CONFIG: path.join(dir, 'none.json'),
      });
      procs.push(p);
      await p.waitFor(/"msg":"registered"/);
      return p;
    };
    await Promise.all([
      agent('node', 'agent:build', ['--work', path.join(dir, 'node-work')]).then((p) => (firstNode = p)),
      agent('tester', 'agent:test', ['--work', path.join(dir, 'tester-work')]),
      agent('signer', 'agent:sign', ['--keys', keysDir, '--work', path.join(dir, 'signer-work')]),
    ]);
    await until('the signing key', async () => (await lx.keys.list()).signingKey);
    const created = await cli(
      'target',
      'create',
      'lx9',
      '--build-repo',
      'lx9-build',
      '--arch',
      'x86_64',
      '--dist',
      '.lx9',
      '--macro',
      'rhel 9',
      '--json',
    );
    assert.equal(created.code, 0, created.stderr);
    await addSource('liblenixdemo', LIBRARY);
    await addSource('demo-app', APPLICATION);
    await addSource('dyn-demo', DYNAMIC);
    await addSource('cyc-a', cyclic('cyc-a', 'cyc-b'));
    await addSource('cyc-b', cyclic('cyc-b', 'cyc-a'));
    await addSource('slow-build', SLOW);
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a target: its build repository exists, its macros are in every build', async () => {
    const t = await lx.targets.get('lx9');
    assert.deepEqual(t.macros, { dist: '.lx9', rhel: '9' });
    assert.equal((await lx.repos.get('lx9-build')).name, 'lx9-build');
    const bad = await cli(
      'target',
      'create',
      'bad',
      '--build-repo',
      'lx9-build',
      '--arch',
      'x86_64',
      '--macro',
      'x %(id)',
    );
    assert.equal(bad.code, 6);
    assert.match(bad.stderr, /^lenix: TARGET_INVALID: /);
    const missing = await cli('build', 'demo-app', '--target', 'nope');
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /^lenix: TARGET_NOT_FOUND: /);
  });

  test('demo-app fails with BUILDREQUIRES_MISSING naming the capability; after liblenixdemo it builds by itself', async () => {
    const first = await finished(await build('demo-app'));
    assert.equal(first.state, 'failed');
    const binary = first.tasks.find((t) => t.kind === 'binary')!;
    assert.equal(binary.reasonCode, 'BUILDREQUIRES_MISSING');
    assert.match(binary.reason!, /pkgconfig\(liblenixdemo\)/);

    const lib = await finished(await build('liblenixdemo'));
    assert.equal(lib.state, 'succeeded', await explain(lib));
    const repo = await landed('liblenixdemo-devel');
    const snapshot = repo.currentSnapshot!;

    const app = await finished(await build('demo-app'));
    assert.equal(app.state, 'succeeded', await explain(app));
    appBuild = app.id;
    // Its test root installs it with its library from the build repository.
    const tested = await until('the test of demo-app', async () => {
      const t = (await getBuild(app.id)).tasks.filter((x) => x.kind === 'test').pop();
      return t && ['succeeded', 'failed'].includes(t.state) ? t : null;
    });
    assert.equal(tested.state, 'succeeded', await explain(await getBuild(app.id)));
    const { result } = await binaryResult(app.id);
    const devel = result.buildroot.installed?.find((p) => p.nevra.startsWith('liblenixdemo-devel-1.0-1.lx9.'));
    assert.ok(devel, JSON.stringify(result.buildroot.installed));
    assert.equal(devel.repo, 'lx9-build');
    assert.equal(devel.snapshotId, snapshot);
    const signed = (await getBuild(lib.id)).tasks.flatMap((t) => t.artifacts).filter((a) => a.kind === 'signed-rpm');
    const signedDevel = signed.find((a) => a.name.startsWith('liblenixdemo-devel-'));
    assert.equal(devel.sha256, signedDevel?.sha256, JSON.stringify(signed));
    assert.ok(result.buildroot.installed!.some((p) => p.repo === 'host' && p.nevra.startsWith('lenix-host-base-')));

    // The SBOM lists it as a build dependency, with its purl.
    const sbom = JSON.stringify(await api.json('GET', `/api/v1/builds/${app.id}/sbom?format=cyclonedx-json`));
    assert.match(sbom, /pkg:rpm\/[^"]*liblenixdemo-devel@1\.0-1\.lx9/);

    // A client installs demo-app from the build repository: dnf pulls liblenixdemo through libdemo.so.1()(64bit).
    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await landed('demo-app');
    await writeFile(path.join(reposDir, 'lx9-build.repo'), await (await fetch(`${url}/repos/lx9-build.repo`)).text());
    const c = new DnfClient(path.join(dir, 'client'), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const r = await c.dnf('install demo-app');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /liblenixdemo-1\.0-1\.lx9/);
    // demo-app names no package: rpm's own dependency generator asked for the library's soname.
    const rpm = (await getBuild(app.id)).tasks.flatMap((t) => t.artifacts).find((a) => a.kind === 'signed-rpm')!;
    const file = path.join(dir, 'demo-app.rpm');
    await writeFile(file, Buffer.from(await (await fetch(`${url}/api/v1/artifacts/${rpm.sha256}`)).arrayBuffer()));
    const { stdout: requires } = await run('rpm', ['-qp', '--requires', file]);
    assert.match(requires, /^libdemo\.so\.1\(\)\(64bit\)$/m);
    assert.doesNotMatch(requires, /^liblenixdemo/m);
  });

  test('a build with the same BuildRequires and repository contents reuses the root, and gives the same bytes', async () => {
    const unsigned = async (id: number) =>
      (await getBuild(id)).tasks
        .flatMap((t) => t.artifacts)
        .filter((a) => a.kind === 'rpm')
        .map((a) => `${a.name} ${a.sha256}`);
    // The build repository holds demo-app now; the cache key leaves the package being built out of it.
    const again = await finished(await build('demo-app'));
    assert.equal(again.state, 'succeeded', await explain(again));
    assert.equal((await binaryResult(again.id)).result.buildroot.cached, true);
    assert.deepEqual(await unsigned(again.id), await unsigned(appBuild), 'a cached root builds the same bytes');

    // Another node, with nothing cached, in place of the first: a cold root, the same bytes again.
    await agent('node', 'agent:build', ['--work', path.join(dir, 'node-2-work'), '--name', 'node-2']);
    await firstNode!.stop('SIGTERM');
    const other = await finished(await build('demo-app'));
    assert.equal(other.state, 'succeeded', await explain(other));
    assert.equal((await binaryResult(other.id)).result.buildroot.cached, false);
    assert.deepEqual(await unsigned(other.id), await unsigned(appBuild), 'two nodes build the same bytes');
  });

  test('%generate_buildrequires: the dynamic dependencies are installed', async () => {
    const b = await finished(await build('dyn-demo'));
    assert.equal(b.state, 'succeeded', await explain(b));
    const { result } = await binaryResult(b.id);
    assert.ok(result.buildroot.installed!.some((p) => p.nevra.startsWith('liblenixdemo-devel-')));
  });

  /** A fresh target with its own (empty) build repository, so that order matters again. */
  const freshTarget = async (name: string) => {
    const r = await cli(
      'target',
      'create',
      name,
      '--build-repo',
      `${name}-build`,
      '--arch',
      'x86_64',
      '--dist',
      '.lx9',
    );
    assert.equal(r.code, 0, r.stderr);
  };
  type BatchOut = {
    id: number;
    state: string;
    reason: string | null;
    groups: { sources: string[]; builds: { id: number; source: string; state: string }[] }[];
  };

  test('chain-build A : B builds B once A is in the build repository', async () => {
    await freshTarget('chain');
    const r = await cli('chain-build', 'liblenixdemo', ':', 'demo-app', '--target', 'chain', '--wait', '--json');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const batch = JSON.parse(r.stdout) as BatchOut;
    assert.equal(batch.state, 'succeeded');
    assert.deepEqual(
      batch.groups.map((g) => g.sources),
      [['liblenixdemo'], ['demo-app']],
    );
    const app = batch.groups[1]!.builds[0]!;
    const { result } = await binaryResult(app.id);
    const devel = result.buildroot.installed!.find((p) => p.nevra.startsWith('liblenixdemo-devel-'))!;
    assert.equal(devel.repo, 'chain-build');
  });

  test('build --batch finds the order from the specs; a cycle is refused and printed; a batch cancels as a whole', async () => {
    await freshTarget('batch');
    const r = await cli('build', '--batch', 'demo-app', 'liblenixdemo', '--target', 'batch', '--wait', '--json');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const batch = JSON.parse(r.stdout) as BatchOut;
    assert.deepEqual(
      batch.groups.map((g) => g.sources),
      [['liblenixdemo'], ['demo-app']],
    );
    assert.equal(batch.state, 'succeeded');

    const typo = await cli('chain-build', 'liblenixdemo', ':', 'no-such-source', '--target', 'batch');
    assert.equal(typo.code, 4, 'an unknown source is refused before anything starts');
    assert.match(typo.stderr, /^lenix: SOURCE_NOT_FOUND: no source no-such-source/);
    const cycle = await cli('build', '--batch', 'cyc-a', 'cyc-b', '--target', 'batch');
    assert.equal(cycle.code, 5);
    assert.match(cycle.stderr, /^lenix: BUILD_ORDER_CYCLE: .*cyc-a → cyc-b → cyc-a/);

    await freshTarget('cancelled');
    const started = await cli('chain-build', 'slow-build', ':', 'demo-app', '--target', 'cancelled', '--json');
    assert.equal(started.code, 0, started.stderr);
    const id = (JSON.parse(started.stdout) as BatchOut).id;
    const cancelled = await cli('batch', 'cancel', String(id), '--json');
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const after = JSON.parse(cancelled.stdout) as BatchOut;
    assert.equal(after.state, 'cancelled');
    assert.equal(after.groups[1]!.builds.length, 0, 'the second group never starts');
    const slow = after.groups[0]!.builds[0]!;
    assert.equal((await finished(slow.id)).state, 'cancelled');
  });

  test('rebuild --target rebuilds everything in the build repository, libraries first', async () => {
    const r = await cli('rebuild', '--target', 'chain', '--wait', '--json');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const batch = JSON.parse(r.stdout) as BatchOut;
    assert.equal(batch.state, 'succeeded', batch.reason ?? '');
    assert.deepEqual(
      batch.groups.map((g) => g.sources),
      [['liblenixdemo'], ['demo-app']],
    );
  });

  test('import: a signed RPM imports and installs from the repository; tampered, wrongly signed and unsigned ones are refused and leave nothing', async () => {
    // An upstream package, built and signed outside Lenix with the upstream's own key.
    const up = path.join(dir, 'upstream');
    const upHome = path.join(up, 'gnupg');
    const otherHome = path.join(up, 'gnupg-other');
    const upKey = (await generateKey(upHome, 'upstream', 'ed25519')).fingerprint;
    const otherKey = (await generateKey(otherHome, 'other', 'ed25519')).fingerprint;
    await mkdir(path.join(up, 'top'), { recursive: true });
    await writeFile(path.join(up, 'up-tool.spec'), specWith('up-tool', 'true'));
    await run(
      'rpmbuild',
      [
        '-bb',
        '--define',
        `_topdir ${path.join(up, 'top')}`,
        '--define',
        '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
        path.join(up, 'up-tool.spec'),
      ],
      {
        env: { ...process.env, HOME: up },
      },
    );
    const built = path.join(up, 'top', 'RPMS', 'up-tool-1.0-1.noarch.rpm');
    const variant = async (name: string, key: { fingerprint: string; gnupgHome: string } | null, tamper = false) => {
      const f = path.join(up, name, 'up-tool-1.0-1.noarch.rpm');
      await mkdir(path.dirname(f), { recursive: true });
      await copyFile(built, f);
      if (key) await rpmsign([f], key);
      if (tamper) {
        const bytes = await readFile(f);
        bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
        await writeFile(f, bytes);
      }
      return f;
    };
    const signed = await variant('signed', { fingerprint: upKey, gnupgHome: upHome });
    const wrong = await variant('wrong', { fingerprint: otherKey, gnupgHome: otherHome });
    const tampered = await variant('tampered', { fingerprint: upKey, gnupgHome: upHome }, true);
    const unsigned = await variant('unsigned', null);
    await writeFile(path.join(up, 'upstream.asc'), await exportPublicKey(upHome, upKey));
    assert.equal((await cli('keys', 'add', path.join(up, 'upstream.asc'))).code, 0);
    assert.equal((await cli('repo', 'create', 'upstream', '--arch', 'x86_64')).code, 0);

    const blobs = async () => (await readdir(path.join(dir, 'server', 'blobs'), { recursive: true })).length;
    const before = { imports: (await lx.imports.list()).imports.length, blobs: await blobs() };
    for (const [f, why] of [
      [tampered, /does not verify/],
      [wrong, /not signed with the given key/],
      [unsigned, /not signed/],
    ] as const) {
      const r = await cli('import', f, '--to', 'upstream', '--key', upKey);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /^lenix: IMPORT_REFUSED: /);
      assert.match(r.stderr, why);
    }
    const noKey = await cli('import', signed, '--to', 'upstream', '--allow-unsigned');
    assert.equal(noKey.code, 6, 'a signed package needs the key it is signed with');
    assert.deepEqual(
      { imports: (await lx.imports.list()).imports.length, blobs: await blobs() },
      before,
      'nothing stored',
    );

    const ok = await cli('import', signed, '--to', 'upstream', '--key', upKey, '--wait', '--json');
    assert.equal(ok.code, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as {
      imports: { sha256: string; signature: { key?: string } }[];
      release: { state: string };
    };
    assert.equal(out.release.state, 'published', ok.stdout);
    assert.equal(out.imports[0]!.signature.key, upKey);
    // The import statement is in the ledger, and the snapshot's SBOM says the package was imported, not built.
    const logKey = (await (await fetch(`${url}/ledger/key`)).text()).trim();
    const verified = await cli('verify', out.imports[0]!.sha256, '--log-key', logKey, '--json');
    assert.equal(verified.code, 0, verified.stderr);
    const chain = JSON.parse(verified.stdout) as { summary: { import?: { key: string | null } } };
    assert.equal(chain.summary.import?.key, upKey, 'the import statement names the key its signature verified against');
    const sbom = JSON.stringify(
      await api.json('GET', '/api/v1/repos/upstream/snapshots/current/sbom?format=cyclonedx-json'),
    );
    assert.match(sbom, /"lenix:origin","value":"imported"/);

    // A client installs it with gpgcheck=1: the repository's .repo file lists the upstream key now.
    const reposDir = path.join(dir, 'upstream-client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'upstream.repo'), await (await fetch(`${url}/repos/upstream.repo`)).text());
    const c = new DnfClient(path.join(dir, 'upstream-client'), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const r = await c.dnf('install up-tool');
    assert.equal(r.code, 0, r.out);

    // An unsigned package goes in only when allowed, and says so.
    const loose = await cli('import', unsigned, '--to', 'lx9-build', '--allow-unsigned', '--wait', '--json');
    assert.equal(loose.code, 0, loose.stderr);
    assert.deepEqual((JSON.parse(loose.stdout) as { imports: { signature: unknown }[] }).imports[0]!.signature, {
      unsigned: true,
    });
    // ... but a buildroot's dnf still checks signatures: a build that needs it fails, and says why.
    await addSource('needs-unsigned', {
      'needs-unsigned.spec': specWith('needs-unsigned', 'true', { extra: 'BuildRequires: up-tool\n' }),
    });
    const refused = await finished(await build('needs-unsigned'));
    const binary = refused.tasks.find((t) => t.kind === 'binary')!;
    assert.equal(binary.reasonCode, 'BUILDROOT_FAILED', await explain(refused));
    assert.match(binary.reason!, /not signed|GPG|signature/i);
  });

  test('a hostile package built in a buildroot: no capability, no user namespace, nothing outside its root, nothing on the host', async () => {
    const { host, hits, close } = await hostListener('broot');
    try {
      // Besides the usual attack: the sandbox's work folder outside the root (keys, the cached root, the
      // repositories), the root's own /usr and rpm database, and the root's /etc.
      const probe = [
        'for f in /tmp/builddir/in/buildroot.sh /tmp/builddir/in/rpmbuild.args /tmp/builddir/in/buildrequires /tmp/builddir/in/root-cache.tar /tmp/builddir/root /tmp/builddir/ovl; do [ -e "$f" ] && echo "HOSTILE broot ESCAPE sees $f"; done',
        ': > /usr/bin/lenix-hostile 2>/dev/null && echo "HOSTILE broot PRIV wrote into the root\'s /usr"',
        ': > /var/lib/rpm/lenix-hostile 2>/dev/null && echo "HOSTILE broot PRIV wrote into the root\'s rpm database"',
        'echo x >> /etc/passwd 2>/dev/null && echo "HOSTILE broot PRIV wrote the root\'s /etc/passwd"',
        'chroot / true 2>/dev/null && echo "HOSTILE broot PRIV chroot"',
        'echo "HOSTILE broot id $(id -u)"',
      ].join('\n');
      await addSource('hostile-broot', {
        'hostile-broot.spec': specWith('hostile-broot', 'bash %{SOURCE1}\nbash %{SOURCE2}', {
          extra: 'Source1: attack.sh\nSource2: probe.sh\nBuildRequires: gcc\n',
        }),
        'attack.sh': attack('broot', host, { unmount: true }),
        'probe.sh': probe,
      });
      const b = await finished(await build('hostile-broot'));
      assert.equal(b.state, 'succeeded', await explain(b));
      const binary = b.tasks.find((t) => t.kind === 'binary')!;
      const log = await (await fetch(`${url}/api/v1/tasks/${binary.id}/log`)).text();
      assert.match(log, /HOSTILE broot DONE/, 'the attack ran to its end');
      assert.match(log, /HOSTILE broot CapEff: 0000000000000000/, 'no capability at all');
      assert.match(log, /HOSTILE broot id 1000/, 'the build user, not the root of the namespace');
      assert.doesNotMatch(log, /HOSTILE \w+ (ESCAPE|PRIV)/);
      assert.deepEqual(secretsFound(log), []);
      for (const d of MARKER_DIRS) assert.equal(existsSync(path.join(d, 'lenix-hostile-broot')), false, d);
      assert.deepEqual(hits, [], 'nothing reached the host listeners');
    } finally {
      close();
    }
  });

  test('an external repository (signed metadata and packages, over HTTP) provides BuildRequires, recorded with its URL', async () => {
    // An upstream dnf repository: one signed package, signed metadata, served on loopback.
    const ext = path.join(dir, 'external');
    const home = path.join(ext, 'gnupg');
    const fpr = (await generateKey(home, 'external', 'ed25519')).fingerprint;
    const repoDir = path.join(ext, 'repo');
    await mkdir(path.join(ext, 'top'), { recursive: true });
    await writeFile(
      path.join(ext, 'ext-tool.spec'),
      specWith('ext-tool', 'true', { extra: 'Provides: ext-capability\n' }),
    );
    await run(
      'rpmbuild',
      [
        '-bb',
        '--define',
        `_topdir ${path.join(ext, 'top')}`,
        '--define',
        `_rpmdir ${repoDir}`,
        path.join(ext, 'ext-tool.spec'),
      ],
      {
        env: { ...process.env, HOME: ext },
      },
    );
    const rpmFile = path.join(repoDir, 'noarch', 'ext-tool-1.0-1.noarch.rpm');
    await rpmsign([rpmFile], { fingerprint: fpr, gnupgHome: home });
    await run('createrepo_c', ['--quiet', repoDir]);
    await run('gpg', [
      '--homedir',
      home,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--local-user',
      fpr,
      '--armor',
      '--detach-sign',
      path.join(repoDir, 'repodata', 'repomd.xml'),
    ]);
    const served = http.createServer((req, res) => {
      const file = path.join(repoDir, path.normalize(decodeURIComponent(req.url ?? '/').split('?')[0]!));
      if (!file.startsWith(repoDir) || !existsSync(file)) return res.writeHead(404).end();
      res.writeHead(200);
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => served.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(served.address() as net.AddressInfo).port}/`;
    try {
      await writeFile(path.join(ext, 'key.asc'), await exportPublicKey(home, fpr));
      assert.equal((await cli('keys', 'add', path.join(ext, 'key.asc'))).code, 0);
      const created = await cli(
        'target',
        'create',
        'ext',
        '--build-repo',
        'ext-build',
        '--arch',
        'x86_64',
        '--external-repo',
        base,
        '--key',
        fpr,
      );
      assert.equal(created.code, 0, created.stderr);
      await addSource('needs-ext', {
        'needs-ext.spec': specWith('needs-ext', 'test -f /usr/share/ext-tool/ok', {
          extra: 'BuildRequires: ext-capability\n',
        }),
      });
      const b = await finished(
        (await api.json<{ id: number }>('POST', '/api/v1/builds', { source: 'needs-ext', target: 'ext' })).id,
      );
      assert.equal(b.state, 'succeeded', await explain(b));
      const { result } = await binaryResult(b.id);
      const tool = result.buildroot.installed?.find((p) => p.nevra === 'ext-tool-1.0-1.noarch');
      assert.ok(tool, JSON.stringify(result.buildroot.installed));
      assert.equal(tool.repo, base);
      assert.equal(tool.snapshotId, null);
      const { stdout } = await run('sha256sum', [rpmFile]);
      assert.equal(tool.sha256, stdout.split(' ')[0]);
    } finally {
      served.close();
    }
  });
});
