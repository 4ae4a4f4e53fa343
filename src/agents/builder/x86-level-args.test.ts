import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { x86LevelArgs } from './x86-level-args.js';
import { inspectElf } from '../../rpm/elf-arch.js';
import { levelMacros, levelsRpmrc, macroPathWith } from '../../rpm/x86-levels.js';

const run = promisify(execFile);
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test("the levels' rpmrc lines are rpm 4.19's", () => {
  const rc = levelsRpmrc();
  assert.match(rc, /^optflags: x86_64_v2 -O2 -g -march=x86-64-v2 -mneeded$/m);
  assert.match(rc, /^arch_canon:\tx86_64_v3:\tx86_64_v3\t1$/m);
  assert.match(rc, /^arch_compat: x86_64_v4: x86_64_v3 x86_64_v2 x86_64 amd64 em64t athlon noarch$/m);
  assert.match(rc, /^buildarch_compat: x86_64_v3: x86_64_v2$/m);
  assert.match(rc, /^buildarch_compat: x86_64_v2: x86_64$/m);
  assert.equal(rc.split('\n').filter(Boolean).length, 18);
  const m = levelMacros('%_arch\t\tx86_64\n%optflags\t\t-O2 -g\n%_lib\t\tlib64\n', 'x86_64_v3');
  assert.match(m, /^%optflags\t\t-O2 -g -march=x86-64-v3 -mneeded$/m);
  assert.match(m, /^%_lib\t\tlib64$/m);
  assert.match(m, /^%x86_64\tx86_64 x86_64_v2 x86_64_v3 x86_64_v4 amd64 em64t$/m);
  assert.equal(
    macroPathWith('/usr/lib/rpm/macros:/usr/lib/rpm/platform/%{_target}/macros:/etc/rpm/macros', '/in/v2.macros'),
    '/usr/lib/rpm/macros:/usr/lib/rpm/platform/%{_target}/macros:/in/v2.macros:/etc/rpm/macros',
  );
});

test('an x86_64_v2 build on this rpm: the package is x86_64_v2 with EL paths and its binary says it needs x86-64-v2', {
  skip: os.arch() !== 'x64' && 'x86-64 levels are built on x86-64 hosts',
}, async () => {
  const top = await mkdtemp(path.join(os.tmpdir(), 'lenix-levels-'));
  dirs.push(top);
  await mkdir(path.join(top, 'SPECS'));
  await mkdir(path.join(top, 'in'));
  const spec = (name: string, flags: string) => `Name: ${name}
Version: 1
Release: 1
Summary: x86-64 level probe
License: MIT
%global debug_package %{nil}
%description
probe
%build
printf 'int main(int c, char **v){return __builtin_popcount(c);}\\n' > p.c
gcc ${flags} -o ${name} p.c
%install
install -D -m755 ${name} %{buildroot}%{_bindir}/${name}
echo %{_libdir} > libdir; install -D -m644 libdir %{buildroot}%{_datadir}/${name}/libdir
%files
%{_bindir}/${name}
%{_datadir}/${name}/libdir
`;
  const args = await x86LevelArgs('x86_64_v2', path.join(top, 'in'), path.join(top, 'in'));
  const build = async (name: string, flags: string) => {
    await writeFile(path.join(top, 'SPECS', `${name}.spec`), spec(name, flags));
    await run('rpmbuild', [
      ...args,
      '--define',
      `_topdir ${top}`,
      '--target',
      'x86_64_v2',
      '-bb',
      path.join(top, 'SPECS', `${name}.spec`),
    ]);
    return path.join(top, 'RPMS', 'x86_64_v2', `${name}-1-1.x86_64_v2.rpm`);
  };
  const good = await build('lvl-good', '%{optflags}');
  const q = (await run('rpm', ['-qp', '--qf', '%{ARCH}|%{PLATFORM}|%{OPTFLAGS}', good])).stdout.split('|');
  assert.equal(q[0], 'x86_64_v2');
  assert.doesNotMatch(q[1]!, /%\{/, 'the platform is expanded');
  assert.match(q[2]!, /-march=x86-64-v2 -mneeded/);
  assert.deepEqual(await inspectElf(good, 'x86_64_v2'), { mismatches: [], levelMarked: 1, levelUnmarked: [] });
  const cpio = (await run('sh', ['-c', `rpm2cpio "${good}" | cpio -i --to-stdout --quiet ./usr/share/lvl-good/libdir`]))
    .stdout;
  assert.equal(cpio.trim(), '/usr/lib64', '%{_libdir} is the x86_64 platform’s');

  const plain = await build('lvl-plain', '-O2');
  assert.deepEqual(await inspectElf(plain, 'x86_64_v2'), {
    mismatches: [],
    levelMarked: 0,
    levelUnmarked: ['/usr/bin/lvl-plain'],
  });
  const above = await build('lvl-above', '-O2 -march=x86-64-v3 -mneeded');
  assert.deepEqual((await inspectElf(above, 'x86_64_v2')).mismatches, [
    { path: '/usr/bin/lvl-above', found: { bits: 64, endian: 'little', machine: 62 }, needsLevel: 3 },
  ]);
});
