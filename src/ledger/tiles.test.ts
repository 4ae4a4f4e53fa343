import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEntryBundle, encodeEntryBundle, encodeIndex, parseTilePath, tilePath, tileWidth } from './tiles.js';

test('tile indexes are three-digit groups with x prefixes (tlog-tiles examples)', () => {
  assert.equal(encodeIndex(0), '000');
  assert.equal(encodeIndex(1234067), 'x001/x234/067');
  assert.equal(tilePath({ level: 0, index: 1234067, width: 256 }), 'tile/0/x001/x234/067');
  assert.equal(tilePath({ level: 1, index: 5, width: 12 }), 'tile/1/005.p/12');
  assert.equal(tilePath({ level: 'entries', index: 0, width: 3 }), 'tile/entries/000.p/3');
  assert.deepEqual(parseTilePath('tile/0/x001/x234/067'), { level: 0, index: 1234067, width: 256 });
  assert.deepEqual(parseTilePath('tile/entries/000.p/3'), { level: 'entries', index: 0, width: 3 });
  for (const bad of [
    'tile/0/1',
    'tile/0/x001',
    'tile/0/000.p/256',
    'tile/0/000.p/0',
    'tile/0/000.p/007',
    '../tile/0/000',
  ]) {
    assert.throws(() => parseTilePath(bad), { code: 'NOT_FOUND' }, bad);
  }
});

test('tile widths follow the tree size', () => {
  assert.equal(tileWidth(300, 0, 0), 256);
  assert.equal(tileWidth(300, 0, 1), 44);
  assert.equal(tileWidth(300, 1, 0), 1);
  assert.equal(tileWidth(300, 0, 2), 0);
  assert.equal(tileWidth(300, 'entries', 1), 44);
});

test('entry bundles are uint16-length-prefixed and bounded', () => {
  const entries = [new Uint8Array([0x61]), new Uint8Array(300).fill(7), new Uint8Array(0)];
  const b = encodeEntryBundle(entries);
  assert.deepEqual([...b.subarray(0, 3)], [0, 1, 0x61]);
  assert.deepEqual(decodeEntryBundle(b), entries);
  assert.throws(() => decodeEntryBundle(b.subarray(0, b.length - 1)), { code: 'SIGNATURE_INVALID' });
  assert.throws(() => encodeEntryBundle([new Uint8Array(65536)]), { code: 'BAD_REQUEST' });
});
