import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { headerDigests, packageInfo, parseRpmHeader, readRpmFileHeader } from './header.js';

const run = promisify(execFile);

async function buildRpm(spec: string): Promise<{ dir: string; srpm: string; rpms: string[] }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-hdr-'));
  await writeFile(path.join(dir, 't.spec'), spec);
  await run(
    'rpmbuild',
    [
      '-ba',
      '--nodeps',
      '--define',
      `_topdir ${dir}`,
      '--define',
      `_srcrpmdir ${dir}/out`,
      '--define',
      `_rpmdir ${dir}/out`,
      '--define',
      '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      path.join(dir, 't.spec'),
    ],
    { env: { ...process.env, HOME: dir } },
  );
  const { readdir } = await import('node:fs/promises');
  const files = await readdir(path.join(dir, 'out'));
  return {
    dir,
    srpm: path.join(dir, 'out', files.find((f) => f.endsWith('.src.rpm'))!),
    rpms: files.filter((f) => !f.endsWith('.src.rpm')).map((f) => path.join(dir, 'out', f)),
  };
}

/** A noarch package with no files: enough for the header reader. */
const tinySpec = (name: string) => `Name: ${name}
Version: 1
Release: 1
Summary: ${name} test package
License: MIT
BuildArch: noarch
%description
x
%files
`;

test('the header digests are the ones rpm records (and an rpm database keeps); a header changed after signing is refused', async () => {
  const { dir, rpms } = await buildRpm(tinySpec('hdrdigest'));
  try {
    const d = headerDigests(await readRpmFileHeader(rpms[0]!));
    const { stdout } = await run('rpm', [
      '-qp',
      '--qf',
      '%{SHA256HEADER} %{SHA1HEADER} %{PAYLOADDIGESTALGO} %{PAYLOADDIGEST}',
      rpms[0]!,
    ]);
    const [sha256, sha1, algo, payload] = stdout.split(' ');
    assert.deepEqual([d.sha256, d.sha1, d.payload], [sha256, sha1, `${algo === '8' ? 'sha256' : algo}:${payload}`]);
    // One byte of the main header's store changed (the last one, a string's NUL or padding): the recorded
    // digest no longer matches, so the header is not what was built.
    const bytes = new Uint8Array(await readFile(rpms[0]!));
    const h = parseRpmHeader(bytes);
    const evil = Uint8Array.from(bytes);
    evil[h.headerEnd - 1] = evil[h.headerEnd - 1]! ^ 0xff;
    assert.throws(() => headerDigests(parseRpmHeader(evil)), { code: 'NOT_AN_RPM' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('reads name, epoch, version, release, arch and arch rules from real packages, as rpm does', async () => {
  const { dir, srpm, rpms } = await buildRpm(`Name: hdrtest
Epoch: 3
Version: 1.2.3
Release: 4%{?dist}
Summary: header test
License: MIT
BuildArch: noarch
ExcludeArch: s390x
%description
x
%files
`);
  try {
    const s = packageInfo(await readRpmFileHeader(srpm));
    assert.equal(s.isSource, true);
    assert.equal(s.arch, 'src');
    assert.deepEqual([s.name, s.epoch, s.version, s.release], ['hdrtest', 3, '1.2.3', '4']);
    assert.deepEqual(s.buildArchs, ['noarch']);
    assert.deepEqual(s.excludeArch, ['s390x']);
    const b = packageInfo(await readRpmFileHeader(rpms[0]!));
    assert.equal(b.isSource, false);
    assert.equal(b.arch, 'noarch');
    assert.equal(b.sourceRpm, 'hdrtest-1.2.3-4.src.rpm');
    const { stdout } = await run('rpm', ['-qp', '--qf', '%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}', rpms[0]!]);
    assert.equal(stdout, `${b.name}|${b.epoch}|${b.version}|${b.release}|${b.arch}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hostile or truncated input fails closed with NOT_AN_RPM', async () => {
  assert.throws(() => parseRpmHeader(new Uint8Array(10)), { code: 'NOT_AN_RPM' });
  assert.throws(() => parseRpmHeader(new Uint8Array(200)), { code: 'NOT_AN_RPM' });
  const { dir, rpms } = await buildRpm(tinySpec('trunc'));
  try {
    const bytes = await readFile(rpms[0]!);
    assert.throws(() => parseRpmHeader(bytes.subarray(0, 300)), { code: 'NOT_AN_RPM' });
    // Corrupt the main header's index count to something enormous: refused, not allocated.
    const evil = Buffer.from(bytes);
    const sigCount = evil.readUInt32BE(96 + 8);
    const sigSize = 16 + sigCount * 16 + evil.readUInt32BE(96 + 12);
    const mainAt = 96 + sigSize + ((8 - (sigSize % 8)) % 8);
    evil.writeUInt32BE(0xffffffff, mainAt + 8);
    assert.throws(() => parseRpmHeader(evil), { code: 'NOT_AN_RPM' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
