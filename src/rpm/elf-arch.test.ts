import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { cpioHeads, describeElf, elfIdentity, elfMismatches } from './elf-arch.js';

const run = promisify(execFile);
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** An ELF header: class, byte order, type and machine where the format puts them. */
function elfHead(bits: 1 | 2, data: 1 | 2, type: number, machine: number): Uint8Array {
  const b = Buffer.alloc(20);
  b.set([0x7f, 0x45, 0x4c, 0x46, bits, data, 1]);
  if (data === 1) {
    b.writeUInt16LE(type, 16);
    b.writeUInt16LE(machine, 18);
  } else {
    b.writeUInt16BE(type, 16);
    b.writeUInt16BE(machine, 18);
  }
  return b;
}

test('ELF identity: class, byte order and machine of executables and shared objects only', () => {
  assert.deepEqual(elfIdentity(elfHead(2, 1, 3, 62)), { bits: 64, endian: 'little', machine: 62, type: 3 });
  assert.deepEqual(elfIdentity(elfHead(2, 2, 2, 22)), { bits: 64, endian: 'big', machine: 22, type: 2 });
  assert.equal(elfIdentity(elfHead(2, 1, 1, 247)), null, 'a relocatable object (BPF, a kernel module) is not judged');
  assert.equal(elfIdentity(Buffer.from('#!/bin/sh\necho not an ELF file\n')), null);
  assert.equal(elfIdentity(elfHead(2, 1, 3, 62).subarray(0, 12)), null, 'too short to be an executable');
  assert.equal(elfIdentity(elfHead(3 as 1, 1, 3, 62)), null, 'an invalid class');
  assert.equal(describeElf({ bits: 64, endian: 'big', machine: 22 }), 'ELF 64-bit MSB IBM S/390');
});

test('cpio (newc) as cpio writes it: every regular file with its first bytes, whatever its size and padding', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-cpio-'));
  dirs.push(dir);
  await mkdir(path.join(dir, 'usr', 'bin'), { recursive: true });
  const files: Record<string, Buffer> = {
    'usr/bin/empty': Buffer.alloc(0),
    'usr/bin/one': Buffer.from('x'),
    'usr/bin/odd-name-length': Buffer.from('abcdefghijklmnopqrstuvwxyz'),
    'usr/bin/big': Buffer.alloc(300_001, 7),
  };
  for (const [p, b] of Object.entries(files)) await writeFile(path.join(dir, p), b);
  const list = ['usr', 'usr/bin', ...Object.keys(files)].join('\n');
  const archive = path.join(dir, 'a.cpio');
  await run('sh', ['-c', `cd "${dir}" && printf '%s\\n' "$1" | cpio -o -H newc --quiet > a.cpio`, 'sh', list]);
  const bytes = await readFile(archive);
  // Delivered in awkward pieces, as a pipe may.
  const pieces = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7));
  const seen: Record<string, string> = {};
  for await (const f of cpioHeads(Readable.from(pieces))) seen[f.path] = f.head.toString('hex');
  assert.deepEqual(
    seen,
    Object.fromEntries(Object.entries(files).map(([p, b]) => [p, b.subarray(0, 20).toString('hex')])),
  );
  await assert.rejects(
    (async () => {
      for await (const _ of cpioHeads(Readable.from([bytes.subarray(0, 200)]))) void _;
    })(),
    (e: Error & { code?: string }) => e.code === 'NOT_AN_RPM',
    'a truncated archive is an error, not the end',
  );
});

test('the arch truth check: the host binary packaged as aarch64 or s390x is caught, as x86_64 it passes', {
  skip: os.arch() !== 'x64' && "the probe packages this host's /bin/true and is written for an x86-64 host",
}, async () => {
  const top = await mkdtemp(path.join(os.tmpdir(), 'lenix-archcheck-'));
  dirs.push(top);
  await mkdir(path.join(top, 'SPECS'));
  // A spec that packages a host executable whatever the target: what `gcc` without %{__cc} does.
  await writeFile(
    path.join(top, 'SPECS', 'a.spec'),
    `Name: archcheck
Version: 1
Release: 1
Summary: arch truth check probe
License: MIT
%global debug_package %{nil}
%description
probe
%install
install -D -m755 /bin/true %{buildroot}/usr/bin/archcheck
printf 'data' > d; install -D -m644 d %{buildroot}/usr/share/archcheck/d
%files
/usr/bin/archcheck
/usr/share/archcheck/d
`,
  );
  const rpmOf = async (target: string) => {
    await run('rpmbuild', ['--define', `_topdir ${top}`, '--target', target, '-bb', path.join(top, 'SPECS', 'a.spec')]);
    return path.join(top, 'RPMS', target, `archcheck-1-1.${target}.rpm`);
  };
  assert.deepEqual(await elfMismatches(await rpmOf('x86_64'), 'x86_64'), []);
  assert.deepEqual(await elfMismatches(await rpmOf('x86_64'), 'x86_64_v2'), [], 'a level is x86-64 code');
  assert.deepEqual(await elfMismatches(await rpmOf('aarch64'), 'aarch64'), [
    { path: '/usr/bin/archcheck', found: { bits: 64, endian: 'little', machine: 62 } },
  ]);
  const s390x = await elfMismatches(await rpmOf('s390x'), 's390x');
  assert.deepEqual(
    s390x.map((m) => `${m.path}: ${describeElf(m.found)}`),
    ['/usr/bin/archcheck: ELF 64-bit LSB x86-64'],
  );
  assert.deepEqual(await elfMismatches(await rpmOf('aarch64'), 'noarch'), [], 'noarch is not judged');
  // The payload is the build's making: reading it stops at a byte bound (and a time bound).
  const bounded = { launcher: [], memoryBytes: 1024 ** 3, timeoutMs: 60_000, maxBytes: 4096 };
  await assert.rejects(
    elfMismatches(await rpmOf('x86_64'), 'x86_64', bounded),
    (e: Error & { code?: string }) => e.code === 'NOT_AN_RPM' && /unpacks to more than 4096 bytes/.test(e.message),
  );
  await assert.rejects(elfMismatches(path.join(top, 'SPECS', 'a.spec'), 'x86_64'), (e: Error & { code?: string }) =>
    ['NOT_AN_RPM'].includes(e.code ?? ''),
  );
});
