import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { lenix, until } from './support/cli.js';
import { DnfClient } from './support/dnf.js';
import { assertWholeTree, buildTested, mirrorTreeCurrent, releaseBuild, startRsyncd } from './support/mirrors.js';
import { type System, startSystem } from './support/system.js';

type Artifact = { kind: string; sha256: string; name: string };
type BuildJson = { tasks: { artifacts: Artifact[] }[] };

const spec = (name: string, version: string, install: string) => `Name: ${name}
Version: ${version}
Release: 1
Summary: Lenix test package ${name}
License: MIT
BuildArch: noarch
%define _binary_payload w0.ufdio

%description
Test package.

%install
mkdir -p %{buildroot}/usr/share/${name}
${install}

%files
/usr/share/${name}

%changelog
* Sun Nov 01 2026 Lenix Tests <tests@lenix.invalid> - ${version}-1
- Test package
`;
const small = (version: string) => spec('syncp', version, `echo ${version} > %{buildroot}/usr/share/syncp/version`);

/**
 * Issue 18, acceptances 3 and 4. A mirror's rsync that runs across a publish gets one whole tree (the one it
 * started in), never a repomd.xml whose files are missing; a repository keeps earlier versions so `dnf downgrade`
 * and `dnf history undo` work; pruning removes the bytes of artifacts nothing references while `lenix verify`
 * still proves where they came from and says they were pruned.
 */
describe('mirror syncs across a publish, retention and pruning', { timeout: 900_000 }, () => {
  let dir: string;
  let sys: System;
  let rsyncd: { url: string; stop(): void } | undefined;
  const builds: Record<string, number> = {};

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-mirror-sync-'));
    sys = await startSystem(dir);
    rsyncd = await startRsyncd(dir, { sync: path.join(dir, 'server', 'repos', 'sync', 'mirror') });
  });

  after(async () => {
    rsyncd?.stop();
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A dnf client of the repository: through its metalink (the origin), or of a mirror's copy as a plain folder. */
  const client = async (name: string, mirror?: string) => {
    const reposDir = path.join(dir, 'clients', name, 'repos.d');
    await mkdir(reposDir, { recursive: true });
    let file = await (await fetch(`${sys.url}/repos/sync.repo`)).text();
    if (mirror) file = file.replace(/^metalink=.*$/m, `baseurl=file://${mirror}/$basearch/`);
    await writeFile(path.join(reposDir, 'sync.repo'), file);
    const c = new DnfClient(path.join(dir, 'clients', name), reposDir);
    await c.base(path.join(dir, 'tester-work', 'host-base', 'repo', 'lenix-host-base-1-1.noarch.rpm'));
    return c;
  };

  test('an rsync running across a publish gets the whole tree it started in, never a repomd.xml naming missing files', async () => {
    await sys.cli('repo', 'create', 'sync', '--arch', 'x86_64');
    // A package larger than loopback's socket buffers (uncompressed random bytes): while the mirror's rsync is
    // stopped, the origin's daemon is stuck sending it, before it has read anything under repodata/.
    const big = spec('syncbig', '1.0', 'head -c 24M /dev/urandom > %{buildroot}/usr/share/syncbig/blob');
    await releaseBuild(sys, await buildTested(sys, dir, 'syncbig', big, '1.0'), 'sync');
    builds['1.0'] = await buildTested(sys, dir, 'syncp', small('1.0'), '1.0');
    await releaseBuild(sys, builds['1.0'], 'sync');
    builds['1.1'] = await buildTested(sys, dir, 'syncp', small('1.1'), '1.1');
    const before = await mirrorTreeCurrent(sys, dir, 'sync');

    // The mirror's rsync (the documented command, with the whole file list made first), stopped once it has it.
    const dest = path.join(dir, 'mirrors', 'mid');
    await mkdir(dest, { recursive: true });
    const rsync = spawn(
      'rsync',
      ['-a', '-v', '--no-inc-recursive', '--delay-updates', '--delete-delay', `${rsyncd!.url}/sync/`, `${dest}/`],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let stopped = false;
    rsync.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!stopped && /receiving file list \.\.\. ?done\n/.test(out)) {
        process.kill(-rsync.pid!, 'SIGSTOP');
        stopped = true;
      }
    });
    rsync.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => rsync.on('exit', (code) => r(code)));
    await until('rsync stopped after its file list', async () => stopped);

    // A publish while it is stopped: the tree it reads from is no longer the current one.
    await releaseBuild(sys, builds['1.1'], 'sync');
    const after = await mirrorTreeCurrent(sys, dir, 'sync');
    assert.ok(after > before);
    const repoDir = path.join(dir, 'server', 'repos', 'sync');
    assert.equal(await readlink(path.join(repoDir, 'mirror')), path.join('mirror.d', String(after)));
    process.kill(-rsync.pid!, 'SIGCONT');
    assert.equal(await exited, 0, out);

    // What it brought is whole, and it is the tree it started in (the new one has syncp 1.1).
    const files = await assertWholeTree(path.join(dest, 'x86_64'));
    assert.deepEqual(files, ['syncbig-1.0-1.noarch.rpm', 'syncp-1.0-1.noarch.rpm']);
    assert.deepEqual(
      await readFile(path.join(dest, 'x86_64', 'repodata', 'repomd.xml')),
      await readFile(path.join(repoDir, 'mirror.d', String(before), 'x86_64', 'repodata', 'repomd.xml')),
    );
    const c = await client('mid', dest);
    const q = await c.dnf('repoquery --qf "%{name}-%{version}" syncp');
    assert.equal(q.code, 0, q.out);
    assert.match(q.out, /^syncp-1\.0$/m);

    // The next run brings the new tree, whole, the earlier version kept beside the new one.
    const again = spawn('rsync', ['-a', '--delay-updates', '--delete-delay', `${rsyncd!.url}/sync/`, `${dest}/`], {
      stdio: 'ignore',
    });
    assert.equal(await new Promise((r) => again.on('exit', r)), 0);
    assert.deepEqual(await assertWholeTree(path.join(dest, 'x86_64')), [
      'syncbig-1.0-1.noarch.rpm',
      'syncp-1.0-1.noarch.rpm',
      'syncp-1.1-1.noarch.rpm',
    ]);
    assert.equal(
      (await readFile(path.join(dest, 'TIME'), 'utf8')).trim(),
      (await (await fetch(`${sys.url}/repos/sync/TIME`)).text()).trim(),
    );
  });

  test('dnf downgrade and history undo work on kept versions; pruned artifacts still verify, their bytes gone', async () => {
    const c = await client('retention');
    assert.equal((await c.dnf('install syncp')).code, 0);
    const installed = async () => (await c.sh('rpm --root "$ROOT" -q syncp')).out.trim();
    assert.equal(await installed(), 'syncp-1.1-1.noarch');
    const down = await c.dnf('downgrade syncp');
    assert.equal(down.code, 0, down.out);
    assert.equal(await installed(), 'syncp-1.0-1.noarch');
    const undo = await c.dnf('history undo last');
    assert.equal(undo.code, 0, undo.out);
    assert.equal(await installed(), 'syncp-1.1-1.noarch');

    // A build that was never released: nothing references its packages.
    builds['1.2'] = await buildTested(sys, dir, 'syncp', small('1.2'), '1.2');
    const artifacts = async (id: number) =>
      (await sys.api.json<BuildJson>('GET', `/api/v1/builds/${id}`)).tasks.flatMap((t) => t.artifacts);
    const orphan = (await artifacts(builds['1.2'])).find((a) => a.kind === 'signed-rpm')!;
    const kept = (await artifacts(builds['1.1']!)).find((a) => a.kind === 'signed-rpm')!;
    const status = async (sha: string) => (await fetch(`${sys.url}/api/v1/artifacts/${sha}`)).status;
    assert.equal(await status(orphan.sha256), 200);

    const dry = JSON.parse(
      (await sys.cli('prune', '--keep-days', '0', '--keep-builds', '0', '--dry-run', '--json')).stdout,
    ) as {
      artifacts: Artifact[];
    };
    const named = dry.artifacts.map((a) => a.sha256);
    assert.ok(named.includes(orphan.sha256), 'the unreleased build is pruned');
    assert.ok(!named.includes(kept.sha256), 'a package in the repository is never pruned');
    assert.equal(await status(orphan.sha256), 200, 'a dry run removes nothing');
    const bad = await lenix(['prune', '--keep-days', 'x', '--keep-builds', '0'], sys.env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^lenix: BAD_REQUEST: /m);

    const pruned = JSON.parse((await sys.cli('prune', '--keep-days', '0', '--keep-builds', '0', '--json')).stdout) as {
      artifacts: Artifact[];
      bytes: number;
    };
    assert.deepEqual(pruned.artifacts.map((a) => a.sha256).sort(), [...named].sort());
    assert.ok(pruned.bytes > 0);
    const gone = await fetch(`${sys.url}/api/v1/artifacts/${orphan.sha256}`);
    assert.equal(gone.status, 410);
    assert.equal(((await gone.json()) as { code: string }).code, 'ARTIFACT_PRUNED');
    assert.equal(await status(kept.sha256), 200);
    // Its SBOM needs the package's header: refused with the same code, not a missing-blob error.
    const sbom = await fetch(`${sys.url}/api/v1/builds/${builds['1.2']}/sbom?format=spdx-json`);
    assert.equal(sbom.status, 410);
    assert.equal(((await sbom.json()) as { code: string }).code, 'ARTIFACT_PRUNED');

    // Its provenance stays: the ledger still proves commit, build and key, and says the bytes are gone.
    const logKey = (await (await fetch(`${sys.url}/ledger/key`)).text()).trim();
    const verified = await lenix(['verify', orphan.sha256, '--log-key', logKey], sys.env);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /^ {2}source /m);
    assert.match(verified.stdout, /^ {2}build /m);
    assert.match(verified.stdout, /^ {2}sign /m);
    assert.match(verified.stdout, /artifact pruned: syncp-1\.2-1\.noarch\.rpm was removed by the retention policy/);
    const json = JSON.parse((await sys.cli('verify', orphan.sha256, '--log-key', logKey, '--json')).stdout) as {
      artifact?: { bytes: string };
    };
    assert.equal(json.artifact?.bytes, 'pruned');

    // The repository is untouched: a fresh client installs every version it had.
    const fresh = await client('after-prune');
    const r = await fresh.dnf('install syncp-1.0 syncbig');
    assert.equal(r.code, 0, r.out);
  });
});
