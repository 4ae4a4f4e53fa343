import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lookasideFiles, parseLookasideMetadata } from './lookaside.js';

test('AlmaLinux-style metadata lines parse to digest and path', () => {
  const d = 'ab'.repeat(32);
  assert.deepEqual(parseLookasideMetadata(`${d} SOURCES/hello-1.0.tar.gz\n\n# comment\n`), [{ sha256: d, path: 'SOURCES/hello-1.0.tar.gz' }]);
  assert.deepEqual(lookasideFiles(['.hello.metadata', 'SPECS/hello.spec', 'x/.y.metadata']), ['.hello.metadata']);
});

test('malformed lines, SHA-1 digests and escaping paths are refused', () => {
  const d = 'ab'.repeat(32);
  for (const bad of ['nonsense', `${'a'.repeat(40)} SOURCES/x.tar`, `${d} ../etc/passwd`, `${d} /etc/passwd`, `${d} SOURCES/../../x`]) {
    assert.throws(() => parseLookasideMetadata(bad), { code: 'LOOKASIDE_INVALID' }, bad);
  }
});
