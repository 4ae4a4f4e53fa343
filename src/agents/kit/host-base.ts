import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createrepo } from '../../rpm/tools.js';

const run = promisify(execFile);

/** Folders whose shared libraries the host offers to roots (Debian multiarch and the usual EL ones). */
const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib/powerpc64le-linux-gnu',
  '/usr/lib/s390x-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/lib64',
];
/** Folders of pkg-config files the host offers (what `pkgconfig(NAME)` BuildRequires resolve against). */
const PKGCONFIG_DIRS = [
  '/usr/lib/x86_64-linux-gnu/pkgconfig',
  '/usr/lib/aarch64-linux-gnu/pkgconfig',
  '/usr/lib/powerpc64le-linux-gnu/pkgconfig',
  '/usr/lib/s390x-linux-gnu/pkgconfig',
  '/usr/lib64/pkgconfig',
  '/usr/lib/pkgconfig',
  '/usr/share/pkgconfig',
];
/** Folders of programs: each one is offered under its path, and under /bin or /sbin where those link into /usr. */
const PROGRAM_DIRS = ['/usr/bin', '/usr/sbin'];

/**
 * The EL package names of a build toolchain, offered when the host has the program that stands for each. A spec's
 * `BuildRequires: gcc` or `make` then resolves against what the host really has, and anything it lacks fails
 * the install, named.
 */
const TOOLCHAIN: readonly [string, string][] = [
  ['gcc', '/usr/bin/gcc'],
  ['gcc-c++', '/usr/bin/g++'],
  ['cpp', '/usr/bin/cpp'],
  ['make', '/usr/bin/make'],
  ['binutils', '/usr/bin/ld'],
  ['glibc-devel', '/usr/include/stdio.h'],
  ['glibc-headers', '/usr/include/stdio.h'],
  ['pkgconfig', '/usr/bin/pkg-config'],
  ['pkgconf', '/usr/bin/pkg-config'],
  ['pkgconf-pkg-config', '/usr/bin/pkg-config'],
  ['bash', '/usr/bin/bash'],
  ['coreutils', '/usr/bin/ls'],
  ['sed', '/usr/bin/sed'],
  ['gawk', '/usr/bin/gawk'],
  ['grep', '/usr/bin/grep'],
  ['tar', '/usr/bin/tar'],
  ['gzip', '/usr/bin/gzip'],
  ['bzip2', '/usr/bin/bzip2'],
  ['xz', '/usr/bin/xz'],
  ['zstd', '/usr/bin/zstd'],
  ['cpio', '/usr/bin/cpio'],
  ['unzip', '/usr/bin/unzip'],
  ['findutils', '/usr/bin/find'],
  ['diffutils', '/usr/bin/diff'],
  ['patch', '/usr/bin/patch'],
  ['file', '/usr/bin/file'],
  ['which', '/usr/bin/which'],
  ['util-linux', '/usr/bin/getopt'],
  ['rpm-build', '/usr/bin/rpmbuild'],
  ['perl', '/usr/bin/perl'],
  ['perl-interpreter', '/usr/bin/perl'],
  ['python3', '/usr/bin/python3'],
  ['autoconf', '/usr/bin/autoconf'],
  ['automake', '/usr/bin/automake'],
  ['libtool', '/usr/bin/libtool'],
  ['cmake', '/usr/bin/cmake'],
  ['meson', '/usr/bin/meson'],
  ['ninja-build', '/usr/bin/ninja'],
  ['systemd', '/usr/bin/systemctl'],
  ['elfutils', '/usr/bin/eu-strip'],
  ['debugedit', '/usr/bin/debugedit'],
];

/**
 * The host's Python 3 as EL names it: `python(abi) = 3.N` (what rpm's generator makes every Python package
 * require), python3-devel when its headers are there, python3-setuptools when setuptools is.
 */
async function pythonProvides(root: string): Promise<string[]> {
  const lib = path.join(root, 'usr', 'lib');
  if (!existsSync(lib) || !existsSync(path.join(root, 'usr', 'bin', 'python3'))) return [];
  const versions = (await readdir(lib)).filter((d) => /^python3\.\d+$/.test(d)).sort();
  const out: string[] = [];
  for (const v of versions) {
    out.push(`python(abi) = ${v.slice('python'.length)}`);
    if (existsSync(path.join(root, 'usr', 'include', v, 'Python.h'))) out.push('python3-devel');
  }
  const dist = path.join(root, 'usr', 'lib', 'python3', 'dist-packages');
  if (existsSync(path.join(dist, 'setuptools'))) out.push('python3-setuptools');
  // Every distribution installed there, as rpm's Python generator names requirements on it (PEP 503 names).
  if (existsSync(dist))
    for (const e of await readdir(dist)) {
      const m = /^(.+?)-(\d[^-]*?)(?:-py\d\.\d+)?\.(?:egg|dist)-info$/.exec(e);
      if (!m) continue;
      const name = m[1]!.replace(/[-_.]+/g, '-').toLowerCase();
      for (const v of versions) out.push(`${v}dist(${name}) = ${m[2]}`);
      out.push(`python3dist(${name}) = ${m[2]}`);
    }
  return out;
}

async function elfProvides(files: readonly string[]): Promise<string[]> {
  return (await pipeThrough('/usr/lib/rpm/elfdeps', ['--provides'], files)).split('\n');
}

/** Feed file names to one of rpm's dependency generators; its output, or nothing when it is absent. */
function pipeThrough(program: string, args: string[], files: readonly string[]): Promise<string> {
  if (!existsSync(program)) return Promise.resolve('');
  return new Promise<string>((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(text));
    child.stdin.end(files.join('\n'));
  });
}

/** Files of these folders of the system root `root` (paths on this host). */
async function listed(root: string, dirs: readonly string[], keep: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs.map((d) => path.join(root, d))) {
    if (!existsSync(dir)) continue;
    for (const e of await readdir(dir, { withFileTypes: true }))
      if ((e.isFile() || e.isSymbolicLink()) && keep(e.name)) out.push(path.join(dir, e.name));
  }
  return out;
}

/** `/bin` → `usr/bin` style links of the root (merged /usr): programs are reachable under both paths. */
async function usrAliases(root: string): Promise<Map<string, string>> {
  const aliases = new Map<string, string>();
  for (const d of ['bin', 'sbin']) {
    const st = await lstat(path.join(root, d)).catch(() => null);
    if (st?.isSymbolicLink()) aliases.set(`/usr/${d}/`, `/${d}/`);
  }
  return aliases;
}

/**
 * The "host base" package for roots on a host without an EL base repository (Debian): its Provides are what the
 * host really offers — rpm's own elfdeps over the host's shared libraries, rpm's pkgconfig generator over its
 * .pc files, every program by path, and the EL names of the toolchain programs it has — so that dnf's solver
 * accepts system dependencies (libc.so.6(GLIBC_2.34)(64bit), /bin/sh, gcc, pkgconfig(zlib), ...) while anything
 * the host lacks still fails the install and is named. Test roots and buildroots both install it. `root` is the system
 * whose files are offered: the host's ('/'), or a system root of another architecture (elfdeps reads any ELF).
 */
export async function hostBaseProvides(root = '/'): Promise<string[]> {
  const provides = new Set<string>(['rtld(GNU_HASH)']);
  const add = (lines: Iterable<string>) => {
    for (const l of lines) if (l.trim()) provides.add(l.trim());
  };
  add(await elfProvides(await listed(root, LIB_DIRS, (n) => /\.so(\.|$)/.test(n))));
  add(
    (
      await pipeThrough(
        '/usr/lib/rpm/pkgconfigdeps.sh',
        ['--provides'],
        await listed(root, PKGCONFIG_DIRS, (n) => n.endsWith('.pc')),
      )
    ).split('\n'),
  );
  const aliases = await usrAliases(root);
  const inRoot = (p: string) => `/${path.relative(root, p)}`;
  for (const program of (await listed(root, PROGRAM_DIRS, (n) => /^[A-Za-z0-9._+-]+$/.test(n))).map(inRoot)) {
    provides.add(program);
    for (const [from, to] of aliases) if (program.startsWith(from)) provides.add(to + program.slice(from.length));
  }
  for (const [name, witness] of TOOLCHAIN) if (existsSync(path.join(root, witness))) provides.add(name);
  add(await pythonProvides(root));
  return [...provides].sort();
}

/**
 * Build the host-base package of `root` (the host by default) into `workRoot/host-base/repo` (with repodata) once;
 * returns the repository folder.
 */
export async function buildHostBase(workRoot: string, root = '/'): Promise<string> {
  const repo = path.join(workRoot, 'host-base', 'repo');
  if (existsSync(path.join(repo, 'repodata', 'repomd.xml'))) return repo;
  const top = path.join(workRoot, 'host-base', 'top');
  await rm(path.join(workRoot, 'host-base'), { recursive: true, force: true });
  await mkdir(top, { recursive: true });
  await mkdir(repo, { recursive: true });
  const provides = await hostBaseProvides(root);
  const spec = [
    'Name: lenix-host-base',
    'Version: 1',
    'Release: 1',
    'Summary: What this host offers to Lenix test roots and buildroots',
    'License: MIT',
    'BuildArch: noarch',
    ...provides.map((p) => `Provides: ${p}`),
    '%description',
    "Generated by Lenix agents from the host's shared libraries, pkg-config files, programs and toolchain.",
    '%files',
    '',
  ].join('\n');
  await writeFile(path.join(top, 'host-base.spec'), spec);
  await run(
    'rpmbuild',
    [
      '-bb',
      '--define',
      `_topdir ${top}`,
      '--define',
      `_rpmdir ${repo}`,
      '--define',
      '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      path.join(top, 'host-base.spec'),
    ],
    {
      env: { ...process.env, HOME: top },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  await createrepo(repo);
  return repo;
}
