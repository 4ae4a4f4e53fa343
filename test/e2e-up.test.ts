import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { readSse } from '../src/cli/follow.js';
import { Proc, freePort, gitRepo, lenix, specWith, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { sbomScenario, type UpBuild, type UpContext, verifyScenario } from './support/up-scenarios.js';
import { webScenario } from './support/web-scenario.js';

const run = promisify(execFile);

/**
 * End to end through the real CLI: `lenix up` (server + local build node as child processes), real git,
 * rpmbuild in bubblewrap, and rpm reading what comes out.
 */
describe('lenix up, end to end', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let up: Proc;
  let url: string;
  let api: ApiClient;

  const cli = (...args: string[]) => lenix(args, env);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await cli(...args, '--json');
    assert.equal(r.code, 0, `lenix ${args.join(' ')} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  type Build = UpBuild;

  const c = { cli, json } as UpContext;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-e2e-'));
    env = { LENIX_CONFIG: path.join(dir, 'config.json'), LENIX_SERVER: '', LENIX_TOKEN: '' };
    delete env['LENIX_SERVER'];
    delete env['LENIX_TOKEN'];
    const port = await freePort();
    up = new Proc(
      ['up', '--data', path.join(dir, 'data'), '--port', String(port), '--local-source-root', path.join(dir, 'repos')],
      env,
    );
    url = (await up.waitFor(/ready: (http:\S+)/))[1]!;
    const token = (await readFile(path.join(dir, 'data', 'admin.token'), 'utf8')).trim();
    api = new ApiClient(url, token);
    Object.assign(c, { dir, env, up, url, api });
  });

  after(async () => {
    await up?.stop('SIGINT');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('lenix up builds the three samples and writes the admin token and CLI config', async () => {
    assert.match(up.out, /build \d+ lenix-hello-data-1\.0-1: succeeded; sign succeeded, test succeeded/);
    assert.match(
      up.out,
      /release \d+ into lenix: published, with advisory LXSA-\d{4}:\d{4} \(security, Moderate\) for lenix-hello-data-1\.1-1/,
    );
    assert.match(up.out, /build \d+ hello-c-1\.2-1: succeeded; sign succeeded, test succeeded/);
    assert.match(
      up.out,
      /build \d+ lenix-multi-2\.0-1: succeeded; sign succeeded, test succeeded .*lenix-multi-config-2\.0-1\.noarch\.rpm/,
    );
    assert.match(up.out, /release \d+ into lenix: published/);
    const st = await stat(path.join(dir, 'data', 'admin.token'));
    assert.equal(st.mode & 0o077, 0, 'admin token is private');
    const cfg = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.server, url);
    const sources = await json<{ name: string }[]>('source', 'list');
    assert.deepEqual(sources.map((s) => s.name).sort(), ['hello-c', 'lenix-hello-data', 'lenix-multi']);
  });

  test('real dnf installs the published samples with gpgcheck=1 and repo_gpgcheck=1 from the .repo file over HTTP', async () => {
    const repoFile = await (await fetch(`${url}/repos/lenix.repo`)).text();
    assert.match(repoFile, /^gpgcheck=1$/m);
    assert.match(repoFile, /^repo_gpgcheck=1$/m);
    const reposDir = path.join(dir, 'client', 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'lenix.repo'), repoFile);
    const client = new DnfClient(path.join(dir, 'client', 'one'), reposDir);
    await client.base(path.join(dir, 'data', 'tester', 'work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    const r = await client.dnf('install lenix-hello-data hello-c lenix-multi');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Importing GPG key|Key imported successfully|imported/i);
    for (const n of [
      'lenix-hello-data-1.1-1.noarch',
      'hello-c-1.2-1.x86_64',
      'lenix-multi-2.0-1.noarch',
      'lenix-multi-config-2.0-1.noarch',
    ])
      assert.match(r.out, new RegExp(n.replace(/\./g, '\\.')));
    const hello = await client.sh('chroot "$ROOT" /usr/bin/hello-c && cat "$ROOT/var/lib/lenix-multi/post-ran"');
    assert.equal(hello.code, 0, hello.out);
    assert.match(hello.out, /Hello from hello-c/);
    assert.match(hello.out, /^configured \d{4}$/m, 'the %post scriptlet ran');
    // The sample advisory lenix up released with lenix-hello-data 1.1 is in the repository's updateinfo.
    const advisories = await client.dnf('updateinfo list --security --installed');
    assert.equal(advisories.code, 0, advisories.out);
    assert.match(advisories.out, /^LXSA-\d{4}:\d{4} +Moderate\/Sec\. +lenix-hello-data-1\.1-1\.noarch$/m);

    // rpmkeys -K with the public key the repository names.
    const keyUrl = /^gpgkey=(\S+)$/m.exec(repoFile)![1]!;
    const db = path.join(dir, 'client', 'rpmdb');
    await writeFile(path.join(dir, 'client', 'key.asc'), await (await fetch(keyUrl)).text());
    await run('rpmkeys', ['--dbpath', db, '--import', path.join(dir, 'client', 'key.asc')]);
    const pkg = path.join(dir, 'client', 'hello-c.rpm');
    await api.download('/repos/lenix/x86_64/Packages/hello-c-1.2-1.x86_64.rpm', pkg);
    const { stdout } = await run('rpmkeys', ['--dbpath', db, '-K', pkg]);
    assert.match(stdout, /digests signatures OK/);
  });

  test('lenix verify proves the chain of each published RPM, online and from its proof bundle alone; tampering is named', () =>
    verifyScenario(c));

  test('SBOMs: the snapshot SBOM names every served RPM by its sha256, all formats validate, bytes repeat, verify --sbom checks them', () =>
    sbomScenario(c));

  test('lenix build on the C sample gives an SRPM and an x86_64 RPM whose bytes match the record', async () => {
    const b = await json<Build>('build', 'hello-c', '--wait');
    assert.equal(b.state, 'succeeded');
    const files = b.tasks.flatMap((t) => t.artifacts).filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
    const srpm = files.find((a) => a.kind === 'srpm');
    const rpm = files.find((a) => a.kind === 'rpm');
    assert.equal(srpm?.name, 'hello-c-1.2-1.src.rpm');
    assert.equal(rpm?.name, `hello-c-1.2-1.${os.arch() === 'x64' ? 'x86_64' : os.arch()}.rpm`);
    const shown = await json<Build>('build', 'show', String(b.id));
    // The text form names each task by its stage (sign and test tasks were shown as `any`).
    await until('the build signed and tested', async () =>
      (await json<Build>('build', 'show', String(b.id))).tasks.some(
        (t) => t.kind === 'test' && t.state === 'succeeded',
      ),
    );
    const text = (await cli('build', 'show', String(b.id))).stdout;
    const arch = os.arch() === 'x64' ? 'x86_64' : os.arch();
    for (const stage of ['srpm', `build ${arch}`, 'sign', 'test'])
      assert.match(text, new RegExp(`^ {2}task \\d+ {2}${stage} {2}`, 'm'), text);
    assert.doesNotMatch(text, / any /);
    const shownFiles = shown.tasks.flatMap((t) => t.artifacts).filter((a) => a.kind === 'srpm' || a.kind === 'rpm');
    assert.deepEqual(
      shownFiles.map((a) => a.sha256),
      files.map((a) => a.sha256),
    );
    for (const a of [srpm!, rpm!]) {
      const file = path.join(dir, a.name);
      const got = await api.download(`/api/v1/artifacts/${a.sha256}`, file);
      assert.equal(got, a.sha256);
      assert.equal(
        createHash('sha256')
          .update(await readFile(file))
          .digest('hex'),
        a.sha256,
      );
      assert.equal((await stat(file)).size, a.size);
    }
    const { stdout } = await run('rpm', [
      '-qp',
      '--qf',
      '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}',
      path.join(dir, rpm!.name),
    ]);
    assert.equal(stdout, rpm!.name.replace(/\.rpm$/, ''));
    const { stdout: files2 } = await run('rpm', ['-qlp', path.join(dir, rpm!.name)]);
    assert.match(files2, /\/usr\/bin\/hello-c/);
    const { stdout: host } = await run('rpm', ['-qp', '--qf', '%{BUILDHOST}', path.join(dir, rpm!.name)]);
    assert.equal(host, 'lenix-build');
  });

  test('the same commit of the noarch sample built twice gives byte-identical RPMs', async () => {
    const one = await json<Build>('build', 'lenix-hello-data', '--wait');
    const two = await json<Build>('build', 'lenix-hello-data', '--wait');
    assert.equal(one.commit, two.commit);
    // The built packages (signatures, added later by the signer, carry their own time and are not compared).
    const digests = (b: Build) =>
      b.tasks
        .flatMap((t) =>
          t.artifacts.filter((a) => a.kind === 'srpm' || a.kind === 'rpm').map((a) => `${a.name} ${a.sha256}`),
        )
        .sort();
    assert.deepEqual(digests(one), digests(two));
    assert.equal(digests(one).length, 2);
  });

  test('the build records the buildroot: rpm, compiler and host OS', async () => {
    const builds = await json<{ id: number }[]>('builds', '--source', 'hello-c', '--limit', '1');
    const b = await api.json<{
      tasks: { buildroot: { tools: Record<string, string>; hostOs: string; packages: unknown[] } }[];
    }>('GET', `/api/v1/builds/${builds[0]!.id}`);
    const br = b.tasks[1]!.buildroot;
    assert.match(br.tools['rpmbuild']!, /RPM version/);
    assert.match(br.tools['gcc']!, /gcc/);
    assert.ok(br.hostOs.length > 0);
    assert.ok(br.packages.length > 0);
  });

  test('a line printed by %build is readable through the follow endpoint before the task completes', async () => {
    const repo = path.join(dir, 'repos', 'slow');
    await gitRepo(repo, { 'slow.spec': specWith('slow', 'echo "LENIX-MARKER-BUILD-LINE"\nsleep 299') });
    assert.equal((await cli('source', 'add', 'slow', repo)).code, 0);
    const b = await json<Build>('build', 'slow');
    // Wait for the binary task to exist, then follow its log.
    let binary: Build['tasks'][number] | undefined;
    for (let i = 0; i < 400 && !binary; i++) {
      const cur = await api.json<Build>('GET', `/api/v1/builds/${b.id}`);
      binary = cur.tasks.find((t) => t.kind === 'binary');
      if (!binary) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(binary, 'binary task appeared');
    const res = await api.request('GET', `/api/v1/tasks/${binary.id}/log?follow=1`);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    let text = '';
    for await (const ev of readSse(res.body!)) {
      assert.equal(ev.event, 'log', 'the stream must not end before the marker');
      text += (JSON.parse(ev.data) as { text: string }).text;
      if (text.includes('LENIX-MARKER-BUILD-LINE')) break;
    }
    const task = await api.json<{ state: string }>('GET', `/api/v1/tasks/${binary.id}`);
    assert.equal(task.state, 'leased', 'the task is still running when the line arrives');
    // Cancel: the sandbox's whole process tree is killed.
    const cancelled = await cli('build', 'cancel', String(b.id));
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const end = await api.request('GET', `/api/v1/tasks/${binary.id}/log?follow=1&offset=0`);
    let ended = '';
    for await (const ev of readSse(end.body!)) if (ev.event === 'end') ended = JSON.parse(ev.data).state;
    assert.equal(ended, 'cancelled');
    // The node hears of the cancel at its next heartbeat (every third of the lease, 10 s), then kills the sandbox:
    // waiting 10 s was a race the CI run lost once.
    const gone = await until(
      'the build process tree to be gone',
      async () => (await run('pgrep', ['-f', 'sleep 299']).catch(() => ({ stdout: '' }))).stdout.trim() === '',
      60_000,
    ).catch(() => false);
    assert.equal(gone, true, 'the build process tree is gone');
  });

  test('the web interface in Chromium: a running build on the dashboard, its live log, an SBOM download, an advisory with its CVEs; accessible; actions need a maintainer', () =>
    webScenario(c));

  test('sandbox: no network, no writes to the host home folder, no view of the server data folder', async () => {
    const hits: string[] = [];
    const listener = net.createServer((s) => {
      hits.push('connection');
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as net.AddressInfo).port;
    const home = os.homedir();
    const db = path.join(dir, 'data', 'server', 'lenix.db');
    const cases: [string, string, RegExp][] = [
      [
        'net',
        `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' || { echo "SANDBOX-CHECK: tcp connect to 127.0.0.1:${port} failed"; exit 1; }`,
        /SANDBOX-CHECK: tcp connect/,
      ],
      [
        'home',
        `touch "${home}/lenix-sandbox-escape" || { echo "SANDBOX-CHECK: cannot write to ${home}"; exit 1; }`,
        /SANDBOX-CHECK: cannot write to/,
      ],
      [
        'data',
        `test -r ${db} && cat ${db} > /dev/null || { echo "SANDBOX-CHECK: cannot read ${db}"; exit 1; }`,
        /SANDBOX-CHECK: cannot read/,
      ],
    ];
    try {
      for (const [name, build, line] of cases) {
        const repo = path.join(dir, 'repos', `escape-${name}`);
        await gitRepo(repo, { [`escape-${name}.spec`]: specWith(`escape-${name}`, build) });
        assert.equal((await cli('source', 'add', `escape-${name}`, repo)).code, 0);
        const r = await cli('build', `escape-${name}`, '--wait', '--json');
        assert.equal(r.code, 1, 'lenix build --wait exits 1 when the build fails');
        const b = JSON.parse(r.stdout) as Build;
        assert.equal(b.state, 'failed');
        assert.equal(b.reasonCode, 'BUILD_FAILED');
        const binary = b.tasks.find((t) => t.kind === 'binary')!;
        const log = await cli('logs', String(binary.id));
        assert.match(log.stdout, line);
        assert.match(log.stdout, /lenix: rpmbuild exited with status 1/);
      }
    } finally {
      listener.close();
    }
    assert.deepEqual(hits, [], 'nothing reached the listener');
    assert.equal(existsSync(path.join(home, 'lenix-sandbox-escape')), false);
    // The server and other builds are unaffected.
    const ok = await json<Build>('build', 'lenix-multi', '--wait');
    assert.equal(ok.state, 'succeeded');
  });

  test('unknown source and missing token are refused by the CLI with a coded error', async () => {
    const r = await cli('build', 'no-such-source');
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^lenix: SOURCE_NOT_FOUND: /);
    const anon = await lenix(['build', 'hello-c', '--server', url], {
      ...env,
      LENIX_CONFIG: path.join(dir, 'none.json'),
    });
    assert.equal(anon.code, 3);
    assert.match(anon.stderr, /UNAUTHENTICATED/);
  });

  test('every role logs to DATA/logs; a crashed child is restarted; Ctrl-C stops everything, helpers included; a restart resumes', async () => {
    const serverLog = await readFile(path.join(dir, 'data', 'logs', 'server.log'), 'utf8');
    assert.match(serverLog, /"msg":"build created"/, "the server's JSON log is in server.log");
    // kill -9 the build node: lenix up starts it again, and it builds.
    const { stdout: pids } = await run('pgrep', [
      '-f',
      `lenix.js node --server .* --work ${path.join(dir, 'data', 'node', 'work')}`,
    ]);
    for (const pid of pids.trim().split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    await up.waitFor(/the node exited \(SIGKILL\); restarting it in 1 s/);
    const rebuilt = await json<Build>('build', 'lenix-hello-data', '--wait');
    assert.equal(rebuilt.state, 'succeeded');

    const before = await json<{ id: number }[]>('builds', '--limit', '500');
    assert.equal(await up.stop('SIGINT'), 0);
    await assert.rejects(fetch(`${url}/api/v1/health`), 'the server is down');
    const agents = await run('pgrep', ['-f', `gpg-agent --homedir ${path.join(dir, 'data', 'signer', 'gnupg')}`]).catch(
      () => ({ stdout: '' }),
    );
    assert.equal(agents.stdout.trim(), '', "the signer's gpg-agent is stopped too");
    const port = new URL(url).port;
    up = new Proc(
      ['up', '--data', path.join(dir, 'data'), '--port', port, '--local-source-root', path.join(dir, 'repos')],
      env,
    );
    await up.waitFor(/ready: /);
    assert.match(up.out, /samples: already present/);
    const afterRestart = await json<{ id: number }[]>('builds', '--limit', '500');
    assert.deepEqual(
      afterRestart.map((b) => b.id),
      before.map((b) => b.id),
    );
    const b = await json<Build>('build', 'lenix-hello-data', '--wait');
    assert.equal(b.state, 'succeeded');
  });
});
