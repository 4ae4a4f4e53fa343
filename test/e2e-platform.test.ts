import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gitRepo, until } from './support/cli.js';
import { EL_FIXTURES, fixtureRelease, platformRepo } from './support/el-fixtures.js';
import { type System, startSystem } from './support/system.js';

const run = promisify(execFile);
type Artifact = { kind: string; name: string; sha256: string; nevra: string };
type Task = { id: number; kind: string; state: string; reason: string | null; artifacts: Artifact[] };
type Build = { id: number; state: string; evr: string; tasks: Task[] };
type Installed = { nevra: string; sha256: string; repo: string };

/**
 * Issue 19: EL specs as written, on a Debian build node, through the el9 platform: a package Lenix builds from
 * platforms/el9/ itself (signed, in the target's build repository, released), installed in every buildroot of a
 * target that names the platform, whose macros the server's spec parse and the SRPM task load too. The fixtures
 * are in EL dist-git style (SPECS/, patches in SOURCES/, tarballs in the lookaside area); each builds, passes its
 * %check, carries EL's hardening, gets -debuginfo and -debugsource packages and ends its EVR in .el9. The tester
 * installs every package, libelcalc-devel with its `Requires: /usr/bin/pkg-config` met by the host base.
 */
describe('EL specs through the el9 platform', { timeout: 1_200_000 }, () => {
  let dir: string;
  let sys: System;
  let work: string;
  const built = new Map<string, Build>();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-platform-'));
    work = path.join(dir, 'work');
    await mkdir(work, { recursive: true });
    sys = await startSystem(dir);
  });

  after(async () => {
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const build = async (source: string): Promise<Build> => {
    const { id } = JSON.parse((await sys.cli('build', source, '--target', 'el9', '--json')).stdout) as { id: number };
    const b = await until(
      `build ${id} of ${source} signed and tested`,
      async () => {
        const x = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
        if (x.tasks.some((t) => t.state === 'failed')) return x;
        return x.tasks.some((t) => t.kind === 'test' && t.state === 'succeeded') ? x : null;
      },
      600_000,
    );
    const failed = b.tasks.find((t) => t.state === 'failed');
    if (failed) {
      const log = await (await fetch(`${sys.url}/api/v1/tasks/${failed.id}/log`)).text();
      assert.fail(`${source}: ${failed.kind} failed: ${failed.reason}\n${log.slice(-6000)}`);
    }
    return b;
  };
  const installedIn = async (b: Build) => {
    const t = b.tasks.filter((x) => x.kind === 'binary').pop()!;
    const task = await sys.api.json<{ buildroot: { installed?: Installed[] } }>('GET', `/api/v1/tasks/${t.id}`);
    return task.buildroot.installed ?? [];
  };

  test('the platform package is built, signed and published by Lenix itself', async () => {
    const created = await sys.cli(
      'target',
      'create',
      'el9',
      '--build-repo',
      'el9-build',
      '--arch',
      'x86_64',
      '--platform',
      'el9',
      '--json',
    );
    assert.equal((JSON.parse(created.stdout) as { platform: string }).platform, 'el9');
    const unknown = await sys
      .cli('target', 'create', 'x', '--build-repo', 'x-b', '--arch', 'x86_64', '--platform', 'el4')
      .catch((e: Error) => e.message);
    assert.match(String(unknown), /TARGET_INVALID: no platform el4; this Lenix has: el9/);

    await platformRepo('el9', path.join(dir, 'repos', 'lenix-platform-el9'));
    await sys.cli('source', 'add', 'lenix-platform-el9', path.join(dir, 'repos', 'lenix-platform-el9'));
    const b = await build('lenix-platform-el9');
    assert.match(b.evr, /^1\.0-1$/);
    const rpm = b.tasks.flatMap((t) => t.artifacts).find((a) => a.kind === 'signed-rpm')!;
    assert.equal(rpm.name, 'lenix-platform-el9-1.0-1.noarch.rpm');
    await sys.cli('repo', 'create', 'el9', '--arch', 'x86_64');
    const rel = JSON.parse(
      (await sys.cli('release', String(b.id), '--to', 'el9', '--approve', '--wait', '--json')).stdout,
    ) as {
      state: string;
    };
    assert.equal(rel.state, 'published');
    // It lands in the target's build repository, where every buildroot of the target takes it from.
    await until('the platform in the build repository', async () => {
      const repo = await sys.lx.repos.get('el9-build');
      return JSON.stringify(repo.snapshots.find((s) => s.id === repo.currentSnapshot) ?? {}).includes(rpm.sha256);
    });
  });

  for (const f of EL_FIXTURES)
    test(`${f.name}: built from EL dist-git on a Debian node, %check passed`, async () => {
      const release = await fixtureRelease(f, work);
      const up = await sys.cli('lookaside', 'upload', release.tarball, '--json');
      const { layouts } = JSON.parse(up.stdout) as { layouts: { specs: string } };
      const repo = path.join(dir, 'repos', f.name);
      await gitRepo(repo, { ...release.files, [`.${f.name}.metadata`]: `${layouts.specs}\n` }, `${f.name}: import`);
      await sys.cli('source', 'add', f.name, repo);
      const b = await build(f.name);
      built.set(f.name, b);
      assert.match(b.evr, /\.el9$/, `${f.name}: EVR ${b.evr}`);
      const log = await (
        await fetch(`${sys.url}/api/v1/tasks/${b.tasks.filter((t) => t.kind === 'binary').pop()!.id}/log`)
      ).text();
      assert.match(log, /Executing\(%check\)/, 'the %check section ran');
      // The platform is in the buildroot, from the build repository, and recorded.
      const platform = (await installedIn(b)).find((p) => p.nevra.startsWith('lenix-platform-el9-1.0-1.'));
      assert.ok(platform, 'lenix-platform-el9 is in the buildroot record');
      assert.equal(platform.repo, 'el9-build');
      const sbom = await (await fetch(`${sys.url}/api/v1/builds/${b.id}/sbom?format=cyclonedx-json`)).text();
      assert.match(sbom, /"name": ?"lenix-platform-el9"/);
    });

  /** The files of a fixture's package, unpacked. */
  const unpack = async (name: string, a: Artifact) => {
    const out = path.join(work, 'x', name, a.name);
    await mkdir(out, { recursive: true });
    await sys.api.download(`/api/v1/artifacts/${a.sha256}`, path.join(out, a.name), a.sha256);
    await run('bash', ['-c', `cd "${out}" && rpm2cpio "${a.name}" | cpio -id --quiet`]);
    return out;
  };

  test('EL paths and scriptlets: site-packages, the unit directory, systemd scriptlets', async () => {
    const files = (n: string) =>
      built
        .get(n)!
        .tasks.flatMap((t) => t.artifacts)
        .filter((a) => a.kind === 'signed-rpm');
    const py = files('python-elgreet').find((a) => a.name.startsWith('python3-elgreet-'))!;
    const list = (await run('rpm', ['-qlp', path.join(await unpack('python-elgreet', py), py.name)])).stdout;
    assert.match(list, /^\/usr\/lib\/python3\.\d+\/site-packages\/elgreet\/__init__\.py$/m, 'EL site-packages');
    assert.match(list, /^\/usr\/bin\/elgreet$/m);
    const daemon = files('eldaemon')[0]!;
    const file = path.join(await unpack('eldaemon', daemon), daemon.name);
    assert.match((await run('rpm', ['-qlp', file])).stdout, /^\/usr\/lib\/systemd\/system\/eldaemon\.service$/m);
    const scripts = (await run('rpm', ['-qp', '--scripts', file])).stdout;
    assert.match(scripts, /systemctl --no-reload preset eldaemon\.service/);
    assert.match(scripts, /systemctl --no-reload disable --now eldaemon\.service/);
    assert.match(scripts, /systemctl try-restart eldaemon\.service/);
    assert.match((await run('rpm', ['-qp', '--requires', file])).stdout, /^systemd$/m);
  });

  test('every fixture: EL hardening in its binaries, debuginfo and debugsource packages, man pages compressed', async () => {
    for (const [name, b] of built) {
      if (EL_FIXTURES.find((f) => f.name === name)?.noarch) continue;
      const files = b.tasks.flatMap((t) => t.artifacts).filter((a) => a.kind === 'signed-rpm');
      assert.ok(
        files.some((a) => a.name.includes('-debuginfo-')),
        `${name}: a -debuginfo package`,
      );
      assert.ok(
        files.some((a) => a.name.includes('-debugsource-')),
        `${name}: a -debugsource package`,
      );
      const main = files.find((a) => !/-(debuginfo|debugsource|devel)-/.test(a.name))!;
      const out = await unpack(name, main);
      const bins = await readdir(path.join(out, 'usr', 'bin'));
      for (const bin of bins) {
        const file = path.join(out, 'usr', 'bin', bin);
        const dynamic = (await run('readelf', ['-d', file])).stdout;
        assert.match(dynamic, /\(FLAGS\)\s+BIND_NOW/, `${name}/${bin}: BIND_NOW`);
        assert.match(dynamic, /Flags: NOW PIE/, `${name}/${bin}: PIE`);
        assert.match((await run('readelf', ['-h', file])).stdout, /Type:\s+DYN/);
        const symbols = (await run('readelf', ['--dyn-syms', '-W', file])).stdout;
        assert.match(symbols, /__stack_chk_fail/, `${name}/${bin}: stack protector`);
      }
      if (name === 'elhello' || name === 'elmeson') {
        const man = await readdir(path.join(out, 'usr', 'share', 'man', 'man1'));
        assert.deepEqual(man, [`${name}.1.gz`], 'the man page is compressed (brp-compress under bash)');
      }
    }
    assert.equal(built.size, EL_FIXTURES.length);
  });
});
