import assert from 'node:assert/strict';
import { test } from 'node:test';
import { linkOnLookasidePath, lookasideFiles, parseLookasideMetadata } from './lookaside.js';

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
