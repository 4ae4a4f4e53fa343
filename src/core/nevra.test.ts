import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareEvr, formatNevra, parseNevra, rpmvercmp } from './nevra.js';

// Known answers from rpm's own test suite (tests/rpmvercmp.at).
const VECTORS: [string, string, -1 | 0 | 1][] = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0', '1.0', 1],
  ['2.0.1', '2.0.1', 0],
  ['2.0', '2.0.1', -1],
  ['2.0.1', '2.0', 1],
  ['2.0.1a', '2.0.1a', 0],
  ['2.0.1a', '2.0.1', 1],
  ['2.0.1', '2.0.1a', -1],
  ['5.5p1', '5.5p1', 0],
  ['5.5p1', '5.5p2', -1],
  ['5.5p2', '5.5p1', 1],
  ['5.5p10', '5.5p10', 0],
  ['5.5p1', '5.5p10', -1],
  ['10xyz', '10.1xyz', -1],
  ['10.1xyz', '10xyz', 1],
  ['xyz10', 'xyz10', 0],
  ['xyz10', 'xyz10.1', -1],
  ['xyz.4', 'xyz.4', 0],
  ['xyz.4', '8', -1],
  ['8', 'xyz.4', 1],
  ['xyz.4', '2', -1],
  ['5.5p2', '5.6p1', -1],
  ['5.6p1', '5.5p2', 1],
  ['5.6p1', '6.5p1', -1],
  ['6.0.rc1', '6.0', 1],
  ['6.0', '6.0.rc1', -1],
  ['10b2', '10a1', 1],
  ['10a2', '10b2', -1],
  ['1.0aa', '1.0aa', 0],
  ['1.0a', '1.0aa', -1],
  ['1.0aa', '1.0a', 1],
  ['10.0001', '10.0001', 0],
  ['10.0001', '10.1', 0],
  ['10.1', '10.0001', 0],
  ['10.0001', '10.0039', -1],
  ['4.999.9', '5.0', -1],
  ['20101121', '20101121', 0],
  ['20101121', '20101122', -1],
  ['2_0', '2_0', 0],
  ['2.0', '2_0', 0],
  ['a', 'a', 0],
  ['a+', 'a+', 0],
  ['a+', 'a_', 0],
  ['+a', '+a', 0],
  ['+a', '_a', 0],
  ['+_', '+_', 0],
  ['_+', '+_', 0],
  ['_+', '_+', 0],
  ['+', '_', 0],
  ['1.0~rc1', '1.0~rc1', 0],
  ['1.0~rc1', '1.0', -1],
  ['1.0', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc1~git123', '1.0~rc1~git123', 0],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0^', '1.0^', 0],
  ['1.0^', '1.0', 1],
  ['1.0', '1.0^', -1],
  ['1.0^git1', '1.0^git1', 0],
  ['1.0^git1', '1.0', 1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git1', '1.01', -1],
  ['1.0^20160101', '1.0.1', -1],
  ['1.0~rc1', '1.0^git1', -1],
  ['1.0^git1~pre', '1.0^git1', -1],
];

test('rpmvercmp agrees with rpm on its own test vectors', () => {
  for (const [a, b, want] of VECTORS) assert.equal(rpmvercmp(a, b), want, `rpmvercmp(${a}, ${b})`);
});

test('EVR comparison: epoch first, then version, then release', () => {
  assert.equal(
    compareEvr({ epoch: 1, version: '1.0', release: '1' }, { epoch: null, version: '9.0', release: '1' }),
    1,
  );
  assert.equal(
    compareEvr({ epoch: null, version: '1.0', release: '2' }, { epoch: 0, version: '1.0', release: '10' }),
    -1,
  );
  assert.equal(
    compareEvr({ epoch: 0, version: '1.0', release: '1.el9' }, { epoch: null, version: '1.0', release: '1.el9' }),
    0,
  );
});

test('NEVRA strings parse and print back', () => {
  const n = parseNevra('lenix-multi-config-1:2.0-1.el9.noarch');
  assert.deepEqual(n, { name: 'lenix-multi-config', epoch: 1, version: '2.0', release: '1.el9', arch: 'noarch' });
  assert.equal(formatNevra(n), 'lenix-multi-config-1:2.0-1.el9.noarch');
  assert.equal(formatNevra({ ...n, epoch: null }), 'lenix-multi-config-2.0-1.el9.noarch');
  assert.throws(() => parseNevra('nonsense'), { code: 'BAD_REQUEST' });
});
