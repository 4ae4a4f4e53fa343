import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitRepo, lenix, until } from './support/cli.js';
import { type System, startSystem } from './support/system.js';

type Task = {
  id: number;
  kind: string;
  arch: string;
  state: string;
  reasonCode: string | null;
  reason: string | null;
  artifacts: { name: string }[];
  untested?: { arch: string; reason: string }[];
};
type Build = { id: number; state: string; tasks: Task[] };

/**
 * Issue 17, acceptance 3: the arch truth check. A node that builds aarch64 with the host's toolchain (no
 * emulated root: the trap of `rpmbuild --target aarch64` with a spec calling plain `gcc`) packages an x86-64
 * binary as `.aarch64.rpm`; the check fails that task with ARCH_MISMATCH naming the file, while the x86_64
 * task of the same build passes it. Nothing of the aarch64 task is uploaded.
 */
describe('arch truth check on a build node', {
  skip: os.arch() !== 'x64' && 'written for an x86-64 host',
  timeout: 600_000,
}, () => {
  let dir: string;
  let sys: System;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-archcheck-e2e-'));
    sys = await startSystem(dir, {
      serverArgs: ['--arch', 'x86_64', '--arch', 'aarch64', '--arch', 'x86_64_v2'],
      nodeArgs: ['--arch', 'x86_64', '--arch', 'aarch64', '--arch', 'x86_64_v2'],
    });
  });

  /** Add a source with this spec, build it, and wait until the build has ended. */
  const buildToEnd = async (name: string, spec: string) => {
    await gitRepo(path.join(dir, 'repos', name), { [`${name}.spec`]: spec });
    await sys.cli('source', 'add', name, path.join(dir, 'repos', name));
    const { id } = JSON.parse((await sys.cli('build', name, '--json')).stdout) as { id: number };
    let last: Build | null = null;
    const build = await until(
      'the build to end',
      async () => {
        last = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
        return ['succeeded', 'failed', 'cancelled'].includes(last.state) ? last : null;
      },
      300_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(last)}`);
    });
    return { id, build };
  };

  after(async () => {
    await sys?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('an x86-64 binary packaged as aarch64 fails its task with ARCH_MISMATCH; x86_64 passes', async () => {
    const spec = `Name: hello-host-gcc
Version: 1.0
Release: 1
Summary: compiles with the host gcc whatever the target
License: MIT
%global debug_package %{nil}
%description
The trap: gcc instead of %{__cc}.
%build
printf '#include <stdio.h>\\nint main(void){puts("hello");return 0;}\\n' > hello.c
gcc %{optflags} -o hello-host-gcc hello.c
%install
install -D -m755 hello-host-gcc %{buildroot}/usr/bin/hello-host-gcc
%files
/usr/bin/hello-host-gcc
%changelog
* Sun Nov 01 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- Test package
`;
    const { build } = await buildToEnd('hello-host-gcc', spec);
    const task = (arch: string) => build.tasks.find((t) => t.kind === 'binary' && t.arch === arch)!;
    assert.equal(task('x86_64').state, 'succeeded');
    assert.equal(task('aarch64').state, 'failed');
    assert.equal(task('aarch64').reasonCode, 'ARCH_MISMATCH');
    assert.match(
      task('aarch64').reason ?? '',
      /hello-host-gcc-1\.0-1\.aarch64\.rpm holds files not built for aarch64 \(ELF 64-bit LSB AArch64\): \/usr\/bin\/hello-host-gcc \(ELF 64-bit LSB x86-64\)/,
    );
    const names = build.tasks.flatMap((t) => t.artifacts.map((a) => a.name));
    assert.ok(names.includes('hello-host-gcc-1.0-1.x86_64.rpm'), names.join(' '));
    assert.ok(!names.some((n) => n.endsWith('.aarch64.rpm')), 'nothing of the failed task was recorded');
  });

  test('x86_64_v2 is a flavour of the x86_64 node: its binary needs x86-64-v2; a tester that cannot install it says so and the release gate holds', async () => {
    const spec = `Name: hello-levels
Version: 1.0
Release: 1
Summary: built for x86_64 and x86_64_v2
License: MIT
ExcludeArch: aarch64
%global debug_package %{nil}
%description
Uses the target's flags.
%build
cat > p.c <<'EOF'
#include <stdio.h>
int main(int c, char **v) { printf("%%d\\n", __builtin_popcount(c)); return 0; }
EOF
gcc %{optflags} -o hello-levels p.c
%install
install -D -m755 hello-levels %{buildroot}%{_bindir}/hello-levels
%files
%{_bindir}/hello-levels
%changelog
* Sun Nov 01 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- Test package
`;
    const { id, build } = await buildToEnd('hello-levels', spec);
    assert.equal(build.state, 'succeeded', JSON.stringify(build.tasks.map((t) => [t.kind, t.arch, t.state, t.reason])));
    assert.deepEqual(
      build.tasks
        .filter((t) => t.kind === 'binary')
        .map((t) => t.arch)
        .sort(),
      ['x86_64', 'x86_64_v2'],
    );
    const v2 = build.tasks.find((t) => t.arch === 'x86_64_v2')!;
    const log = await (await fetch(`${sys.url}/api/v1/tasks/${v2.id}/log`)).text();
    assert.match(log, /hello-levels-1\.0-1\.x86_64_v2\.rpm: 1 binaries marked x86-64-v2/);
    const tested = await until(
      'the test task to end',
      async () => {
        const b = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
        const t = b.tasks.find((x) => x.kind === 'test');
        return t && ['succeeded', 'failed', 'cancelled'].includes(t.state) ? t : null;
      },
      300_000,
    );
    const testLog = await (await fetch(`${sys.url}/api/v1/tasks/${tested.id}/log`)).text();
    // This host's rpm (4.18) cannot install x86_64_v2: the tester tests the x86_64 package and says so.
    assert.equal(tested.state, 'succeeded', testLog.slice(-2000));
    assert.match(testLog, /installed with gpgcheck=1: hello-levels-1\.0-1\.x86_64\n/);
    assert.deepEqual(
      tested.untested?.map((u) => u.arch),
      ['x86_64_v2'],
    );
    assert.match(testLog, /untested: x86_64_v2: tester \S+ has no x86_64_v2 root/);
    // Shown on the build's page with the test stages (and recorded so in the test statement).
    assert.match(
      await (await fetch(`${sys.url}/builds/${id}`)).text(),
      /<td>arch x86_64_v2<\/td><td class="muted">skipped<\/td><td>untested: tester /,
    );
    // The release gate honours it: a release needs a maintainer's override reason.
    await sys.cli('repo', 'create', 'levels', '--arch', 'x86_64', '--arch', 'x86_64_v2');
    const blocked = await lenix(['release', String(id), '--to', 'levels'], sys.env);
    assert.notEqual(blocked.code, 0);
    assert.match(blocked.stderr, /RELEASE_BLOCKED.*x86_64_v2 packages are untested: tester \S+ has no x86_64_v2 root/);
  });
});
