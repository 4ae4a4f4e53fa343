import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkLookasidePath,
  linkOnLookasidePath,
  lookasideFiles,
  lookasidePathFor,
  parseLookasideMetadata,
  sourceDirOf,
} from './lookaside.js';

test('AlmaLinux-style metadata lines parse to digest and path', () => {
  const d = 'ab'.repeat(32);
  assert.deepEqual(parseLookasideMetadata(`${d} SOURCES/hello-1.0.tar.gz\n\n# comment\n`), [
    { sha256: d, path: 'SOURCES/hello-1.0.tar.gz' },
  ]);
  assert.deepEqual(lookasideFiles(['.hello.metadata', 'SPECS/hello.spec', 'x/.y.metadata']), ['.hello.metadata']);
});

test('malformed lines, SHA-1 digests and escaping paths are refused', () => {
  const d = 'ab'.repeat(32);
  for (const bad of [
    'nonsense',
    `${'a'.repeat(40)} SOURCES/x.tar`,
    `${d} ../etc/passwd`,
    `${d} /etc/passwd`,
    `${d} SOURCES/../../x`,
  ]) {
    assert.throws(() => parseLookasideMetadata(bad), { code: 'LOOKASIDE_INVALID' }, bad);
  }
});

test('a lookaside path through a symbolic link of the tree is named; other paths are not', () => {
  const links = new Set(['SOURCES', 'docs/current']);
  assert.equal(linkOnLookasidePath('SOURCES/x.tar.gz', links), 'SOURCES');
  assert.equal(linkOnLookasidePath('docs/current/a/b.tar', links), 'docs/current');
  assert.equal(linkOnLookasidePath('docs/current', links), 'docs/current');
  assert.equal(linkOnLookasidePath('docs/currently.tar', links), null);
  assert.equal(linkOnLookasidePath('SOURCES2/x.tar', links), null);
});

test('a lookaside file goes where rpmbuild reads the spec its sources: SOURCES/ beside SPECS/, else beside the spec', () => {
  assert.equal(sourceDirOf('SPECS/p.spec'), 'SOURCES');
  assert.equal(sourceDirOf('p.spec'), '');
  assert.equal(lookasidePathFor('SPECS/p.spec', 'p-1.tar.gz'), 'SOURCES/p-1.tar.gz');
  assert.equal(lookasidePathFor('p.spec', 'p-1.tar.gz'), 'p-1.tar.gz');
  const e = (path: string) => ({ sha256: 'a'.repeat(64), path });
  checkLookasidePath('.p.metadata', e('SOURCES/p-1.tar.gz'), 'SPECS/p.spec');
  checkLookasidePath('.p.metadata', e('p-1.tar.gz'), 'p.spec');
  assert.throws(() => checkLookasidePath('.p.metadata', e('SOURCES/p-1.tar.gz'), 'p.spec'), {
    code: 'LOOKASIDE_INVALID',
    message: /write p-1\.tar\.gz\)$/,
  });
  assert.throws(() => checkLookasidePath('.p.metadata', e('sub/p-1.tar.gz'), 'SPECS/p.spec'), {
    code: 'LOOKASIDE_INVALID',
    message: /are in SOURCES \(write SOURCES\/p-1\.tar\.gz\)$/,
  });
});
