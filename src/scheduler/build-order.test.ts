import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LenixError } from '../core/errors.js';
import { capabilityOf, orderBuilds } from './build-order.js';

test('a batch is ordered into groups by what each source needs and the others offer', () => {
  const groups = orderBuilds([
    { source: 'demo-app', needs: ['gcc', 'pkgconfig(liblenixdemo)'], offers: ['demo-app'] },
    {
      source: 'liblenixdemo',
      needs: ['gcc'],
      offers: ['liblenixdemo', 'liblenixdemo-devel', 'pkgconfig(liblenixdemo)'],
    },
    { source: 'other', needs: [], offers: ['other'] },
    { source: 'top', needs: ['demo-app', 'other'], offers: ['top'] },
  ]);
  assert.deepEqual(groups, [['liblenixdemo', 'other'], ['demo-app'], ['top']]);
});

test('a cycle is refused and printed', () => {
  assert.throws(
    () =>
      orderBuilds([
        { source: 'cyc-a', needs: ['cyc-b-devel'], offers: ['cyc-a'] },
        { source: 'cyc-b', needs: ['cyc-a'], offers: ['cyc-b', 'cyc-b-devel'] },
        { source: 'free', needs: [], offers: ['free'] },
      ]),
    (e: unknown) =>
      e instanceof LenixError && e.code === 'BUILD_ORDER_CYCLE' && /cyc-a → cyc-b → cyc-a/.test(e.message),
  );
});

test('versions are dropped from BuildRequires', () => {
  assert.equal(capabilityOf('pkgconfig(foo) >= 1.2'), 'pkgconfig(foo)');
  assert.equal(capabilityOf('gcc'), 'gcc');
});
