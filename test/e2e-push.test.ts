import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { ApiClient } from '../src/client/http.js';
import type { LenixClient } from '../src/client/lenix.js';
import { hubSignature } from '../src/core/push-signature.js';
import { gitRepo, specWith, until } from './support/cli.js';
import { type System, startSystem } from './support/system.js';
import { DnfClient } from './support/dnf.js';

const run = promisify(execFile);
type Build = { id: number; state: string; evr: string; createdBy: string };
type Release = { id: number; repoId: number; state: string; builds: number[]; createdBy: string };

/**
 * Push instead of polling (issue 15): a bare git repository with Lenix's post-receive hook, a source built for
 * a target, and a repository that follows the target with auto-release. A `git push` of a new version makes
 * it installable with dnf without any other step. Real git, server, node, signer, tester and dnf.
 */
describe('push: commit to installable', { timeout: 600_000 }, () => {
  let dir: string;
  let sys: System;
  let url: string;
  let api: ApiClient;
  let lx: LenixClient;
  const bare = () => path.join(dir, 'repos', 'pushed.git');
  const work = () => path.join(dir, 'work');
  const git = (...args: string[]) => run('git', args, { cwd: work(), env: { ...process.env, ...sys.env } });
  const spec = () => specWith('pushed', 'echo build').replace('Release: 1', 'Release: 1%{?dist}');
  const builds = async () => (await api.json<{ builds: Build[] }>('GET', '/api/v1/builds?source=pushed')).builds;
  const commitVersion = async (version: string) => {
    await writeFile(path.join(work(), 'pushed.spec'), spec().replaceAll('1.0', version));
    await git('commit', '-qam', `pushed ${version}`);
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-push-'));
    sys = await startSystem(dir);
    ({ url, api, lx } = sys);
    await sys.cli('target', 'create', 'lx9', '--build-repo', 'lx9-build', '--arch', 'x86_64', '--dist', '.lx9');
    await sys.cli('repo', 'create', 'live', '--arch', 'x86_64', '--follow', 'lx9', '--auto-release');
    // A bare repository (as a forge holds it) and a working clone that pushes to it.
    await gitRepo(path.join(dir, 'seed'), { 'pushed.spec': spec() });
    await mkdir(path.join(dir, 'repos'), { recursive: true });
    await run('git', ['clone', '-q', '--bare', path.join(dir, 'seed'), bare()]);
    await run('git', ['clone', '-q', bare(), work()]);
    await git('config', 'user.email', 'dev@example.org');
    await git('config', 'user.name', 'Dev');
    await sys.cli('source', 'add', 'pushed', bare(), '--target', 'lx9');
    await sys.cli('source', 'hook', 'pushed', '--install', bare());
  });

  after(async () => {
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a push event must be signed with the source’s secret; nothing is fetched otherwise', async () => {
    const hook = `${url}/api/v1/sources/pushed/hook`;
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    const post = (headers: Record<string, string>, b = body) =>
      fetch(hook, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: b });
    const unsigned = await post({});
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { code: string }).code, 'HOOK_SIGNATURE_INVALID');
    const forged = await post({ 'x-hub-signature-256': hubSignature('not-the-secret', body) });
    assert.equal(forged.status, 401);
    const secret = (await readFile(path.join(bare(), 'hooks', 'lenix-hook-secret'), 'utf8')).trim();
    const tampered = await post({ 'x-hub-signature-256': hubSignature(secret, body) }, `${body} `);
    assert.equal(tampered.status, 401, 'the signature covers the exact bytes');
    const other = JSON.stringify({ ref: 'refs/heads/feature' });
    const elsewhere = await post({ 'x-hub-signature-256': hubSignature(secret, other) }, other);
    assert.deepEqual([elsewhere.status, await elsewhere.json()], [202, { builds: [] }]);
    const gitlab = await post({ 'x-gitlab-token': secret });
    assert.deepEqual([gitlab.status, await gitlab.json()], [202, { builds: [] }], 'nothing new on main yet');
    const unknown = await fetch(`${url}/api/v1/sources/nope/hook`, { method: 'POST', body: '{}' });
    assert.equal(unknown.status, 404);
    assert.deepEqual(await builds(), [], 'no build was started');
  });

  test('git push of a new version: built for the target, released by itself, installable with dnf', async () => {
    const t0 = performance.now();
    await commitVersion('1.1');
    const pushed = await git('push', '-q', 'origin', 'HEAD:main');
    assert.match(pushed.stderr, /lenix: refs\/heads\/main: build \d+ started/);
    const [b] = await builds();
    assert.equal(b?.createdBy, 'push:pushed');
    assert.match(b!.evr, /^1\.1-1\.lx9$/);
    const live = (await lx.repos.get('live')).id;
    const released = await until('the auto-release to be published', async () => {
      const rs = (await api.json<{ releases: Release[] }>('GET', '/api/v1/releases')).releases;
      const r = rs.find((x) => x.repoId === live && x.builds.includes(b!.id));
      if (r?.state === 'failed') throw new Error(`release failed: ${JSON.stringify(r)}`);
      return r?.state === 'published' ? r : null;
    });
    assert.equal(released.createdBy, 'lenix (auto-release)');
    const c = await dnfClient('v11');
    const installed = await c.dnf('install pushed');
    assert.equal(installed.code, 0, installed.out);
    assert.match((await c.sh('rpm --root "$ROOT" -q pushed')).out, /^pushed-1\.1-1\.lx9\.noarch/m);
    process.stderr.write(`# push → installed: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);

    // Two pushes in a row build each commit once, in order.
    await commitVersion('1.2');
    await git('push', '-q', 'origin', 'HEAD:main');
    await commitVersion('1.3');
    await git('push', '-q', 'origin', 'HEAD:main');
    const all = await builds();
    assert.deepEqual(
      all.map((x) => x.evr).sort(),
      ['1.1-1.lx9', '1.2-1.lx9', '1.3-1.lx9'],
      'one build per pushed commit',
    );
  });

  /** A dnf client of the `live` repository as the server publishes it (gpgcheck and repo_gpgcheck on). */
  async function dnfClient(name: string): Promise<DnfClient> {
    const reposDir = path.join(dir, 'clients', name, 'repos.d');
    await mkdir(reposDir, { recursive: true });
    await writeFile(path.join(reposDir, 'live.repo'), await (await fetch(`${url}/repos/live.repo`)).text());
    const c = new DnfClient(path.join(dir, 'clients', name), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    return c;
  }
});
