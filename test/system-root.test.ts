import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { emulationProblem, openSystemRoot, ROOT_INFO } from '../src/agents/kit/system-root.js';
import { LenixError } from '../src/core/errors.js';
import { bwrapArgs } from '../src/rpm/sandbox-plan.js';
import { DEFAULT_LIMITS } from '../src/rpm/sandbox-types.js';
import { lenix } from './support/cli.js';

/** System roots refuse what they are not, with their codes; a sandbox in one sees the root's /usr and /etc. */
describe('system roots', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-sysroot-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (e: unknown) => (e instanceof LenixError ? e.code : String(e)),
    );

  test('a folder that is not a whole root is refused with SYSTEM_ROOT_INVALID', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    assert.equal(await code(openSystemRoot(empty)), 'SYSTEM_ROOT_INVALID');
    await writeFile(path.join(empty, ROOT_INFO), '{not json');
    assert.equal(await code(openSystemRoot(empty)), 'SYSTEM_ROOT_INVALID');
    await writeFile(path.join(empty, ROOT_INFO), JSON.stringify({ arch: 'aarch64' }));
    assert.equal(await code(openSystemRoot(empty)), 'SYSTEM_ROOT_INVALID');
    const info = { arch: 'aarch64', debianArch: 'arm64', suite: 'bookworm', mirror: 'm', packages: [], createdAt: 'x' };
    await writeFile(path.join(empty, ROOT_INFO), JSON.stringify(info));
    // Described but empty: no rpmbuild inside.
    await assert.rejects(openSystemRoot(empty), /has no \/usr\/bin\/rpmbuild/);
  });

  test('the CLI refuses bad roots with a coded one-line error and a non-zero exit', async () => {
    const node = await lenix(
      ['node', '--server', 'http://127.0.0.1:9', '--token', 'x', '--root', path.join(dir, 'none')],
      {},
    );
    assert.equal(node.code, 7);
    assert.match(node.stderr, /^lenix: SYSTEM_ROOT_INVALID: .*not a Lenix system root/m);
    const arch = await lenix(['node', 'root', 'create', '--arch', 'sparc64', path.join(dir, 'r')], {});
    assert.equal(arch.code, 2);
    assert.match(arch.stderr, /^lenix: BAD_REQUEST: no root can be made for sparc64/m);
    const none = await lenix(['node', 'root', 'create', path.join(dir, 'r')], {});
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--arch ARCH/);
    if (process.getuid?.() === 0) {
      const full = path.join(dir, 'full');
      await mkdir(full);
      await writeFile(path.join(full, 'something'), 'x');
      const r = await lenix(['node', 'root', 'create', '--arch', 'aarch64', full], {});
      assert.equal(r.code, 7);
      assert.match(r.stderr, /SYSTEM_ROOT_INVALID: .*exists and is not empty/);
    }
  });

  test('emulation problems are named', async () => {
    assert.equal(await emulationProblem(process.arch === 'x64' ? 'x86_64' : 'aarch64'), null);
    assert.match((await emulationProblem('m68k')) ?? '', /no emulator is known for m68k/);
  });

  test("a sandbox in a system root binds the root's /usr, its /bin links and its /etc files, never the host's", async () => {
    const root = path.join(dir, 'fake-root');
    await mkdir(path.join(root, 'usr/bin'), { recursive: true });
    await mkdir(path.join(root, 'usr/lib'), { recursive: true });
    await mkdir(path.join(root, 'etc/alternatives'), { recursive: true });
    await writeFile(path.join(root, 'etc/ld.so.cache'), '');
    const { symlink } = await import('node:fs/promises');
    await symlink('usr/bin', path.join(root, 'bin'));
    await symlink('usr/lib', path.join(root, 'lib'));
    // An absolute link in the root names a path in the root, not the host's file.
    await writeFile(path.join(root, 'usr/lib/os-release'), 'ID=fake\n');
    await symlink('/usr/lib/os-release', path.join(root, 'etc/os-release'));
    const { args } = bwrapArgs({
      identity: { kind: 'current-user', uid: 1000, gid: 1000 },
      limits: DEFAULT_LIMITS,
      inside: 'user',
      command: ['true'],
      env: {},
      hostname: 'h',
      systemRoot: root,
    });
    const pairs = (flag: string) =>
      args
        .flatMap((a, i) => (a === flag ? [`${args[i + 1]} -> ${args[i + 2]}`] : []))
        .filter((p) => !p.startsWith('-'));
    const binds = pairs('--ro-bind');
    assert.ok(binds.includes(`${root}/usr -> /usr`), binds.join('\n'));
    assert.ok(binds.includes(`${root}/etc/ld.so.cache -> /etc/ld.so.cache`));
    assert.ok(binds.includes(`${root}/etc/alternatives -> /etc/alternatives`));
    assert.ok(binds.includes(`${root}/usr/lib/os-release -> /etc/os-release`));
    assert.ok(!binds.some((b) => b.startsWith('/usr ') || b.startsWith('/etc/')), binds.join('\n'));
    assert.deepEqual(pairs('--symlink').sort(), ['../tmp -> /var/tmp', 'usr/bin -> /bin', 'usr/lib -> /lib']);
  });
});
