import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../src/client/http.js';
import { LenixError } from '../src/core/errors.js';
import { generateKey } from '../src/crypto/gpg.js';
import { Proc, freePort, gitRepo, lenix, specWith, until } from './support/cli.js';

import { type Build, MARKER_DIRS, attack, secretsFound } from './support/hostile.js';

describe('hostile packages against the sandboxes', { timeout: 900_000 }, () => {
  let dir: string;
  let url: string;
  let api: ApiClient;
  let admin: string;
  const procs: Proc[] = [];
  const hits: string[] = [];
  const servers: net.Server[] = [];
  const host = { pid: process.pid, port: 0, abstract: `lenix-hostile-${process.pid}-${Date.now()}` };
  const limits = { disk: 64, log: 24, procs: 512 };

  const getBuild = (id: number) => api.json<Build>('GET', `/api/v1/builds/${id}`);
  const finished = (id: number) =>
    until(`build ${id}`, async () => {
      const b = await getBuild(id);
      return ['succeeded', 'failed', 'cancelled'].includes(b.state) ? b : null;
    });
  const taskLog = async (id: number) => (await api.request('GET', `/api/v1/tasks/${id}/log`)).text();
  const addSource = async (name: string, files: Record<string, string>) => {
    const repo = path.join(dir, 'repos', name);
    await gitRepo(repo, files);
    await api.json('POST', '/api/v1/sources', { name, url: repo });
    return repo;
  };
  const buildOf = async (name: string) =>
    finished((await api.json<{ id: number }>('POST', '/api/v1/builds', { source: name })).id);
  const markersLeft = (where: string) =>
    MARKER_DIRS.map((d) => path.join(d, `lenix-hostile-${where}`)).filter((f) => existsSync(f));
  /** The end of a build's last task log, for assertion messages. */
  const explain = async (b: Build) => {
    const t = b.tasks[b.tasks.length - 1];
    return t ? `${b.reasonCode ?? ''}: ${(await taskLog(t.id)).slice(-3000)}` : 'no task';
  };
  const agentToken = async (name: string, scope: string) =>
    (await api.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes: [scope] })).token;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-hostile-'));
    // Listeners a build must not reach: TCP on the host's loopback and an abstract unix socket.
    const tcp = net.createServer((s) => {
      hits.push('tcp');
      s.destroy();
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    host.port = (tcp.address() as net.AddressInfo).port;
    const abstract = net.createServer((s) => {
      hits.push('abstract');
      s.destroy();
    });
    await new Promise<void>((r) => abstract.listen(`\0${host.abstract}`, r));
    servers.push(tcp, abstract);

    const port = await freePort();
    const server = new Proc(
      [
        'server',
        '--data',
        path.join(dir, 'server'),
        '--port',
        String(port),
        '--lease-seconds',
        '5',
        '--spec-timeout',
        '5',
        '--local-source-root',
        path.join(dir, 'repos'),
      ],
      {},
    );
    procs.push(server);
    url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
    admin = (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim();
    api = new ApiClient(url, admin);
    // Secrets on this host that a sandbox must never see: the server's data, a node token file, signing keys.
    await writeFile(path.join(dir, 'server', 'lenix-hostile-secret.sqlite'), 'secret');
    await writeFile(path.join(dir, 'node.token'), `${await agentToken('node', 'agent:build')}\n`, { mode: 0o600 });
    const keysDir = path.join(dir, 'keys');
    const key = (await generateKey(keysDir, 'hostile-test', 'ed25519')).fingerprint;
    const limitFlags = [
      '--disk',
      String(limits.disk),
      '--log-limit',
      String(limits.log),
      '--max-procs',
      String(limits.procs),
      '--timeout',
      '120',
    ];
    const none = { LENIX_CONFIG: path.join(dir, 'none.json') };
    const node = new Proc(
      [
        'node',
        '--server',
        url,
        '--token-file',
        path.join(dir, 'node.token'),
        '--work',
        path.join(dir, 'node-work'),
        ...limitFlags,
      ],
      none,
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
        '--disk',
        '512',
        '--max-procs',
        String(limits.procs),
      ],
      none,
    );
    const signer = new Proc(
      [
        'signer',
        '--server',
        url,
        '--token',
        await agentToken('signer', 'agent:sign'),
        '--keys',
        keysDir,
        '--work',
        path.join(dir, 'signer-work'),
      ],
      none,
    );
    procs.push(node, tester, signer);
    await Promise.all([node, tester, signer].map((p) => p.waitFor(/"msg":"registered"/)));
    assert.equal((await api.json<{ signingKey: string }>('GET', '/api/v1/keys')).signingKey, key);
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
    for (const where of ['build', 'install', 'pre', 'post', 'tests'])
      for (const f of markersLeft(where)) await rm(f, { force: true });
  });

  test('a spec whose %build and %install attack the host: nothing escapes, no capability, the node builds on', async () => {
    const spec = specWith('hostile-build', `bash %{SOURCE1} build`, { extra: 'Source1: attack.sh\n' }).replace(
      '%install\n',
      '%install\nbash %{SOURCE1} install\n',
    );
    const sh = (where: string) => attack(where, host, { unmount: true });
    await addSource('hostile-build', {
      'hostile-build.spec': spec,
      'attack.sh': `case "$1" in build) ${'\n'}${sh('build')};; install) ${'\n'}${sh('install')};; esac\n`,
    });
    const b = await buildOf('hostile-build');
    const binary = b.tasks.find((t) => t.kind === 'binary')!;
    const log = await taskLog(binary.id);
    for (const where of ['build', 'install']) {
      assert.match(log, new RegExp(`HOSTILE ${where} DONE`), `the ${where} attack ran to its end`);
      assert.match(log, new RegExp(`HOSTILE ${where} CapEff: 0000000000000000`), 'no capability at all');
      assert.deepEqual(markersLeft(where), [], 'no marker on the host');
    }
    assert.match(log, /HOSTILE build uid_map: +1000 0 1;/, 'the uid map is in the log');
    assert.match(log, /lenix: sandbox user: uid 1000 inside = host user lenix-build/);
    assert.doesNotMatch(log, /HOSTILE \w+ (ESCAPE|PRIV|LIMIT)/);
    assert.deepEqual(secretsFound(log), []);
    assert.equal(b.state, 'succeeded', 'the build itself is fine; its attacks all failed');
    assert.deepEqual(hits, [], 'nothing reached the host listeners');
  });

  test('a fork bomb, a disk filler and a log flood each fail on their own limit; the node keeps working', async () => {
    await addSource('hostile-bomb', {
      'hostile-bomb.spec': specWith(
        'hostile-bomb',
        [
          // The bomb's first shell stays (a loop of builtins) so that timeout kills its whole process group.
          `timeout -s KILL 5 bash -c 'b() { b | b & }; b; while [ $SECONDS -lt 30 ]; do :; done' > fork.log 2>&1 || true`,
          // The killed bomb counts until the sandbox's init has reaped it: wait (with a fork that fails fast) till then.
          'n=0; until (exit 0) 2>/dev/null || [ $n -gt 1000000 ]; do n=$((n + 1)); done',
          'echo "bomb hit the process limit $(grep -c \'Resource temporarily unavailable\' fork.log) times"',
        ].join('\n'),
      ),
    });
    await addSource('hostile-disk', {
      'hostile-disk.spec': specWith('hostile-disk', `dd if=/dev/zero of=fill bs=1M count=${limits.disk * 2}`),
    });
    await addSource('hostile-log', {
      'hostile-log.spec': specWith(
        'hostile-log',
        `set +x\nhead -c ${limits.log * 2 * 1024 * 1024} /dev/zero | tr '\\0' x | fold -w 99`,
      ),
    });

    const bomb = await buildOf('hostile-bomb');
    assert.equal(bomb.state, 'succeeded', await explain(bomb));
    const hit = /bomb hit the process limit (\d+) times/.exec(
      await taskLog(bomb.tasks.find((t) => t.kind === 'binary')!.id),
    );
    assert.ok(hit && Number(hit[1]) > 0, 'the bomb ran into the limit');

    const disk = await buildOf('hostile-disk');
    assert.equal(disk.state, 'failed');
    assert.equal(disk.reasonCode, 'BUILD_DISK_FULL');
    assert.match(await taskLog(disk.tasks.find((t) => t.kind === 'binary')!.id), /No space left on device/);

    const flood = await buildOf('hostile-log');
    assert.equal(flood.state, 'failed');
    assert.equal(flood.reasonCode, 'BUILD_LOG_LIMIT');
    const floodLog = await taskLog(flood.tasks.find((t) => t.kind === 'binary')!.id);
    assert.ok(floodLog.length < (limits.log + 1) * 1024 * 1024, `the stored log is cut (${floodLog.length} bytes)`);
    assert.match(floodLog, /lenix: the log reached its limit of \d+ bytes; output cut here and the run stopped/);

    await addSource('after-hostile', { 'after-hostile.spec': specWith('after-hostile', 'echo fine') });
    assert.equal((await buildOf('after-hostile')).state, 'succeeded', 'the next package builds');
  });

  test('200,000 lines of %build output under set -x read back whole and in order', async () => {
    await addSource('noisy', {
      'noisy.spec': specWith('noisy', 'for i in $(seq 1 200000); do echo "line $i of the noisy log"; done'),
    });
    const b = await buildOf('noisy');
    assert.equal(b.state, 'succeeded');
    const lines = (await taskLog(b.tasks.find((t) => t.kind === 'binary')!.id)).split('\n');
    let expect = 1;
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('line ')) continue;
      assert.equal(lines[i], `line ${expect} of the noisy log`);
      assert.equal(
        lines[i - 1],
        `+ echo 'line ${expect} of the noisy log'`,
        'the trace line (bash, the build shell as on EL) comes whole, just before its output',
      );
      expect++;
    }
    assert.equal(expect - 1, 200_000);
  });

  test('hostile macros at parse time (%(...), %{lua:...}) see and change nothing on the server; a slow parse is killed', async () => {
    const dataDir = path.join(dir, 'server');
    const probe = [
      `for p in /etc/shadow /root /home ${dataDir} ${path.join(dir, 'keys')}; do [ -e "$p" ] && printf .saw; done`,
      'mount -o remount,rw / 2>/dev/null && printf .remount',
      'mkdir -p /var/lib 2>/dev/null; : > /var/lib/lenix-hostile-parse 2>/dev/null && printf .varlib',
      ': > /etc/lenix-hostile-parse 2>/dev/null && printf .etc',
      ': > /tmp/lenix-hostile-parse',
      `(exec 3<>/dev/tcp/127.0.0.1/${host.port}) 2>/dev/null && printf .tcp`,
      'unshare -Ur true 2>/dev/null && printf .userns',
      `kill -0 ${host.pid} 2>/dev/null && printf .kill`,
      'true',
    ].join('; ');
    const lua = `local out = ''; for _, p in ipairs({'/etc/shadow', '${dataDir}/admin.token'}) do local f = io.open(p) if f then out = out .. '.luaread' f:close() end end; local w = io.open('/etc/lenix-hostile-lua', 'w') if w then out = out .. '.luawrite' w:close() end; print(out)`;
    const spec = specWith('hostile-parse', 'true').replace(
      'Release: 1\n',
      `%global probe %(bash -c '${probe}')\n%global luaprobe %{lua: ${lua}}\nRelease: 1%{probe}%{luaprobe}\n`,
    );
    await addSource('hostile-parse', { 'hostile-parse.spec': spec });
    const created = await api.json<{ id: number }>('POST', '/api/v1/builds', { source: 'hostile-parse' });
    assert.equal((await getBuild(created.id)).evr, '1.0-1', 'every probe came back empty');
    for (const f of [
      '/var/lib/lenix-hostile-parse',
      '/etc/lenix-hostile-parse',
      '/tmp/lenix-hostile-parse',
      '/etc/lenix-hostile-lua',
    ])
      assert.equal(existsSync(f), false, f);
    assert.deepEqual(hits, []);

    await addSource('slow-parse', {
      'slow-parse.spec': specWith('slow-parse', 'true').replace(
        'Release: 1\n',
        '%global slow %(sleep 600)\nRelease: 1%{slow}\n',
      ),
    });
    const started = Date.now();
    await assert.rejects(
      api.json('POST', '/api/v1/builds', { source: 'slow-parse' }),
      (e: unknown) => e instanceof LenixError && e.code === 'SPEC_INVALID',
    );
    assert.ok(Date.now() - started < 30_000, 'killed at the spec timeout');
  });

  test('a lookaside line behind a symlink of the tree (SOURCES -> /root, -> /etc/cron.d) is refused with a code', async () => {
    const tarball = path.join(dir, 'x.tar.gz');
    await writeFile(tarball, 'lookaside bytes');
    const up = await lenix(['lookaside', 'upload', tarball, '--json'], {
      LENIX_CONFIG: path.join(dir, 'none.json'),
      LENIX_SERVER: url,
      LENIX_TOKEN: admin,
    });
    assert.equal(up.code, 0, up.stderr);
    const { sha256 } = JSON.parse(up.stdout) as { sha256: string };
    for (const [name, target] of [
      ['link-root', '/root'],
      ['link-cron', '/etc/cron.d'],
    ] as const) {
      const repo = path.join(dir, 'repos', name);
      await mkdir(repo, { recursive: true });
      await symlink(target, path.join(repo, 'SOURCES'));
      // A dist-git layout (SPECS/), where SOURCES/x.tar.gz is where rpmbuild reads it: only the link is wrong.
      await gitRepo(repo, {
        [`SPECS/${name}.spec`]: specWith(name, 'true'),
        [`.${name}.metadata`]: `${sha256} SOURCES/x.tar.gz\n`,
      });
      await api.json('POST', '/api/v1/sources', { name, url: repo });
      await assert.rejects(
        api.json('POST', '/api/v1/builds', { source: name }),
        (e: unknown) => e instanceof LenixError && e.code === 'LOOKASIDE_PATH_UNSAFE',
      );
      assert.equal(existsSync(path.join(target, 'x.tar.gz')), false);
    }
  });

  test('a package whose %pre, %post and tests/ attack the test system: the run reports it, the host is untouched', async () => {
    const scriptlet = (where: string) => `%${where} -p /bin/bash\n${attack(where, host, { unmount: false })}\n`;
    const spec = specWith('hostile-test', 'true').replace(
      '%files\n',
      `${scriptlet('pre')}${scriptlet('post')}%files\n`,
    );
    const repo = path.join(dir, 'repos', 'hostile-test');
    await mkdir(path.join(repo, 'tests'), { recursive: true });
    await writeFile(path.join(repo, 'tests', 'attack.sh'), `#!/bin/bash\n${attack('tests', host, { unmount: true })}`);
    await chmod(path.join(repo, 'tests', 'attack.sh'), 0o755);
    await gitRepo(repo, { 'hostile-test.spec': spec });
    await api.json('POST', '/api/v1/sources', { name: 'hostile-test', url: repo });
    const id = (await api.json<{ id: number }>('POST', '/api/v1/builds', { source: 'hostile-test' })).id;
    const test = await until('the hostile package to be tested', async () => {
      const b = await getBuild(id);
      if (b.state === 'failed') throw new Error(`the hostile package did not build: ${b.reasonCode}`);
      const t = b.tasks.filter((x) => x.kind === 'test').pop();
      return t && ['succeeded', 'failed'].includes(t.state) ? t : null;
    });
    const log = await taskLog(test.id);
    for (const where of ['pre', 'post', 'tests']) {
      assert.match(log, new RegExp(`HOSTILE ${where} DONE`), `the ${where} attack ran to its end`);
      assert.deepEqual(markersLeft(where), [], 'no marker on the host');
    }
    assert.match(
      log,
      /HOSTILE pre uid_map: +0 \d+ 1; 1 \d+ \d+;/,
      'root inside maps to the unprivileged sandbox user and its subordinate ids',
    );
    assert.doesNotMatch(log, /HOSTILE \w+ ESCAPE/);
    assert.doesNotMatch(log, /HOSTILE \w+ LIMIT/, 'no scriptlet or test undoes a limit of the sandbox');
    assert.deepEqual(secretsFound(log), []);
    assert.match(log, /@@LENIX-RESULT tests passed/, 'the run reports what the package did');
    assert.deepEqual(hits, []);
    // The pipeline still works: the signer and tester take the next package.
    await addSource('after-hostile-test', { 'after-hostile-test.spec': specWith('after-hostile-test', 'true') });
    const next = (await api.json<{ id: number }>('POST', '/api/v1/builds', { source: 'after-hostile-test' })).id;
    const nextTest = await until('the next package to be tested', async () => {
      const t = (await getBuild(next)).tasks.filter((x) => x.kind === 'test').pop();
      return t && ['succeeded', 'failed'].includes(t.state) ? t : null;
    });
    assert.equal(nextTest.state, 'succeeded');
  });
});
