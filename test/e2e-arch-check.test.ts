import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitRepo, until } from './support/cli.js';
import { type System, startSystem } from './support/system.js';

type Task = {
  kind: string;
  arch: string;
  state: string;
  reasonCode: string | null;
  reason: string | null;
  artifacts: { name: string }[];
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
      serverArgs: ['--arch', 'x86_64', '--arch', 'aarch64'],
      nodeArgs: ['--arch', 'x86_64', '--arch', 'aarch64'],
    });
  });

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
gcc -O2 -o hello-host-gcc hello.c
%install
install -D -m755 hello-host-gcc %{buildroot}/usr/bin/hello-host-gcc
%files
/usr/bin/hello-host-gcc
%changelog
* Sun Nov 01 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- Test package
`;
    await gitRepo(path.join(dir, 'repos', 'hello-host-gcc'), { 'hello-host-gcc.spec': spec });
    await sys.cli('source', 'add', 'hello-host-gcc', path.join(dir, 'repos', 'hello-host-gcc'));
    const { id } = JSON.parse((await sys.cli('build', 'hello-host-gcc', '--json')).stdout) as { id: number };
    const build = await until(
      'both binary tasks to end',
      async () => {
        const b = await sys.api.json<Build>('GET', `/api/v1/builds/${id}`);
        const binaries = b.tasks.filter((t) => t.kind === 'binary');
        return binaries.length === 2 && binaries.every((t) => t.state === 'succeeded' || t.state === 'failed')
          ? b
          : null;
      },
      300_000,
    );
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
});
