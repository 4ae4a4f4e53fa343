import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ApiClient } from '../src/client/http.js';
import { readSse } from '../src/cli/follow.js';
import { Proc, freePort, gitRepo, lenix, specWith } from './support/cli.js';

const run = promisify(execFile);

type Build = {
  id: number;
  state: string;
  tasks: {
    id: number;
    kind: string;
    state: string;
    attempts: number;
    agentId: number | null;
    artifacts: { kind: string; sha256: string }[];
  }[];
};

/** Remote-style roles: `lenix server` and separate `lenix node` processes, as on several machines. */
describe('build nodes over the agent protocol', () => {
  let dir: string;
  let server: Proc;
  let url: string;
  let api: ApiClient;
  const procs: Proc[] = [];

  const node = async (name: string) => {
    const token = (await api.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes: ['agent:build'] }))
      .token;
    const p = new Proc(['node', '--server', url, '--token', token, '--name', name, '--work', path.join(dir, name)], {
      LENIX_CONFIG: path.join(dir, 'none.json'),
    });
    procs.push(p);
    await p.waitFor(/"msg":"registered"/);
    return p;
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-nodes-'));
    const port = await freePort();
    server = new Proc(
      [
        'server',
        '--data',
        path.join(dir, 'server'),
        '--port',
        String(port),
        '--lease-seconds',
        '2',
        '--watch-seconds',
        '1',
        '--local-source-root',
        path.join(dir, 'repos'),
      ],
      {},
    );
    procs.push(server);
    url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
    api = new ApiClient(url, (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim());
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  });

  test('kill -9 a node mid-build: after the lease expires another node completes the task, one result recorded', {
    timeout: 180_000,
  }, async () => {
    const repo = path.join(dir, 'repos', 'crashy');
    await gitRepo(repo, {
      'crashy.spec': specWith('crashy', 'echo "CRASHY-STARTED on $(hostname)"\nsleep 3\necho "CRASHY-DONE"'),
    });
    await api.json('POST', '/api/v1/sources', { name: 'crashy', url: repo });
    const a = await node('node-a');
    const b0 = await api.json<Build>('POST', '/api/v1/builds', { source: 'crashy' });

    let binary: Build['tasks'][number] | undefined;
    while (!binary) {
      binary = (await api.json<Build>('GET', `/api/v1/builds/${b0.id}`)).tasks.find((t) => t.kind === 'binary');
      if (!binary) await new Promise((r) => setTimeout(r, 50));
    }
    const res = await api.request('GET', `/api/v1/tasks/${binary.id}/log?follow=1`);
    let text = '';
    for await (const ev of readSse(res.body!)) {
      text += ev.event === 'log' ? (JSON.parse(ev.data) as { text: string }).text : '';
      if (text.includes('CRASHY-STARTED')) break;
    }
    a.child.kill('SIGKILL');
    await a.wait();
    const agents = await api.json<{ agents: { id: number; name: string }[] }>('GET', '/api/v1/agents');
    const idA = agents.agents.find((x) => x.name === 'node-a')!.id;

    await node('node-b');
    let done: Build;
    for (;;) {
      done = await api.json<Build>('GET', `/api/v1/builds/${b0.id}`);
      if (['succeeded', 'failed', 'cancelled'].includes(done.state)) break;
      await new Promise((r2) => setTimeout(r2, 100));
    }
    assert.equal(done.state, 'succeeded');
    const t = done.tasks.find((x) => x.id === binary!.id)!;
    assert.equal(t.attempts, 2);
    assert.notEqual(t.agentId, idA, 'the second node completed it');
    assert.equal(t.artifacts.filter((x) => x.kind === 'rpm').length, 1, 'one result recorded');
    const events = await api.json<{ events: { kind: string; taskId: number | null }[] }>(
      'GET',
      `/api/v1/builds/${b0.id}/events`,
    );
    assert.ok(events.events.some((e) => e.kind === 'task.requeued' && e.taskId === t.id));
    assert.equal(events.events.filter((e) => e.kind === 'task.succeeded' && e.taskId === t.id).length, 1);
    const log = await (await api.request('GET', `/api/v1/tasks/${t.id}/log`)).text();
    assert.match(log, /CRASHY-DONE/);
    const { stdout } = await run('pgrep', ['-f', 'crashy-1.0-1.src.rpm']).catch(() => ({ stdout: '' }));
    assert.equal(stdout.trim(), '', 'the killed node left no build processes');
  });

  test('a watched source with lookaside tarballs builds its tip, then every new commit', {
    timeout: 180_000,
  }, async () => {
    await node('node-c');
    const admin = (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim();
    const env = { LENIX_CONFIG: path.join(dir, 'none.json'), LENIX_SERVER: url, LENIX_TOKEN: admin };
    // A tarball kept out of git, uploaded to the lookaside area.
    const stage = path.join(dir, 'stage', 'lk-1.0');
    await mkdir(stage, { recursive: true });
    await writeFile(path.join(stage, 'README'), 'from the lookaside tarball\n');
    const tarball = path.join(dir, 'stage', 'lk-1.0.tar.gz');
    await run('tar', ['-czf', tarball, '-C', path.join(dir, 'stage'), 'lk-1.0']);
    const up = await lenix(['lookaside', 'upload', tarball, '--json'], env);
    assert.equal(up.code, 0, up.stderr);
    // Without a source named, both layouts' lines: SOURCES/ beside SPECS/, or the root beside a spec there.
    const { sha256, metadataLine, layouts } = JSON.parse(up.stdout) as {
      sha256: string;
      metadataLine: string | null;
      layouts: { specs: string; root: string };
    };
    assert.equal(metadataLine, null);
    assert.deepEqual(layouts, { specs: `${sha256} SOURCES/lk-1.0.tar.gz`, root: `${sha256} lk-1.0.tar.gz` });

    const spec = (version: string) => `Name: lk
Version: ${version}
Release: 1
Summary: lookaside test
License: MIT
BuildArch: noarch
Source0: lk-1.0.tar.gz
%description
x
%prep
%setup -q -n lk-1.0
%install
install -D -m 0644 README %{buildroot}/usr/share/lk/README
%files
/usr/share/lk/README
`;
    const repo = path.join(dir, 'repos', 'lk');
    await gitRepo(repo, { 'SPECS/lk.spec': spec('1.0'), '.lk.metadata': `${layouts.specs}\n` });
    const added = await lenix(['source', 'add', 'lk', repo, '--watch', '--json'], env);
    assert.equal(added.code, 0, added.stderr);
    const first = (JSON.parse(added.stdout) as { build: { id: number } }).build;
    assert.ok(first, 'watching builds the current tip');

    const waitBuild = async (id: number) => {
      for (;;) {
        const b = await api.json<Build & { evr: string; commit: string }>('GET', `/api/v1/builds/${id}`);
        if (['succeeded', 'failed', 'cancelled'].includes(b.state)) return b;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const b1 = await waitBuild(first.id);
    assert.equal(b1.state, 'succeeded');
    const rpm = b1.tasks.flatMap((t) => t.artifacts).find((a) => a.kind === 'rpm')!;
    const file = path.join(dir, 'lk.rpm');
    await api.download(`/api/v1/artifacts/${rpm.sha256}`, file, rpm.sha256);
    const { stdout } = await run('rpm', ['-qlp', file]);
    assert.match(stdout, /\/usr\/share\/lk\/README/);

    const sha2 = await gitRepo(repo, { 'SPECS/lk.spec': spec('1.1') }, 'lk 1.1');
    let second: { id: number; commit: string } | undefined;
    while (!second) {
      const { builds } = await api.json<{ builds: { id: number; commit: string }[] }>(
        'GET',
        '/api/v1/builds?source=lk',
      );
      second = builds.find((b) => b.commit === sha2);
      if (!second) await new Promise((r) => setTimeout(r, 100));
    }
    const b2 = await waitBuild(second.id);
    assert.equal(b2.state, 'succeeded');
    assert.equal(b2.evr, '1.1-1');
    const { builds } = await api.json<{ builds: unknown[] }>('GET', '/api/v1/builds?source=lk');
    assert.equal(builds.length, 2, 'one build per commit, no duplicates');

    // A spec at the repository root reads its sources from the root: a SOURCES/ line is refused at build creation
    // (rpmbuild would not find the file), and the upload names the line this source needs.
    const root = path.join(dir, 'repos', 'lkr');
    await gitRepo(root, {
      'lkr.spec': spec('1.0').replace('Name: lk', 'Name: lkr'),
      '.lkr.metadata': `${layouts.specs}\n`,
    });
    assert.equal((await lenix(['source', 'add', 'lkr', root], env)).code, 0);
    const refused = await lenix(['build', 'lkr'], env);
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(
      refused.stderr,
      /^lenix: LOOKASIDE_INVALID: \.lkr\.metadata puts SOURCES\/lk-1\.0\.tar\.gz where rpmbuild will not read it: the sources of lkr\.spec are in the repository root \(write lk-1\.0\.tar\.gz\)$/m,
    );
    const forRoot = await lenix(['lookaside', 'upload', tarball, '--source', 'lkr'], env);
    assert.equal(forRoot.code, 0, forRoot.stderr);
    assert.match(
      forRoot.stdout,
      new RegExp(`^add this line to \\.lkr\\.metadata:\n${sha256} lk-1\\.0\\.tar\\.gz$`, 'm'),
    );
    await gitRepo(root, { '.lkr.metadata': `${sha256} lk-1.0.tar.gz\n` }, 'root layout');
    const built = await lenix(['build', 'lkr', '--wait', '--json'], env);
    assert.equal(built.code, 0, built.stderr);
    assert.equal((JSON.parse(built.stdout) as { state: string }).state, 'succeeded');
  });
});
