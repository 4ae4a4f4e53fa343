import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePlainName, parseSha256, parseSourceName } from './ids.js';

test('plain names refuse traversal, separators and control characters', () => {
  assert.equal(parsePlainName('hello-1.0-1.x86_64.rpm'), 'hello-1.0-1.x86_64.rpm');
  for (const bad of ['', '.', '..', '../x', 'a/b', 'a\\b', 'a\nb', 'x'.repeat(256), 42]) {
    assert.throws(() => parsePlainName(bad), { code: 'INVALID_NAME' }, String(bad));
  }
});

test('digests are 64 lowercase hex characters', () => {
  assert.equal(parseSha256('a'.repeat(64)), 'a'.repeat(64));
  for (const bad of ['A'.repeat(64), 'a'.repeat(63), 'g'.repeat(64), null])
    assert.throws(() => parseSha256(bad), { code: 'INVALID_DIGEST' });
});

test('source names are package-like', () => {
  assert.equal(parseSourceName('gcc-toolset-13'), 'gcc-toolset-13');
  for (const bad of ['-x', '../x', 'a b', '']) assert.throws(() => parseSourceName(bad), { code: 'INVALID_NAME' });
});
