import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planFanOut, type SrpmArchInfo } from './fan-out.js';

const none = { buildArchs: [], exclusiveArch: [], excludeArch: [] };

test('one binary task per target architecture by default', () => {
  assert.deepEqual(planFanOut(none, ['x86_64', 'aarch64']), { kind: 'tasks', arches: ['x86_64', 'aarch64'] });
});

test('BuildArch noarch builds once', () => {
  assert.deepEqual(planFanOut({ ...none, buildArchs: ['noarch'] }, ['x86_64', 'aarch64']), {
    kind: 'tasks',
    arches: ['noarch'],
  });
});

test('ExclusiveArch keeps only the listed architectures, aliases included', () => {
  assert.deepEqual(planFanOut({ ...none, exclusiveArch: ['x86_64'] }, ['x86_64', 'aarch64']), {
    kind: 'tasks',
    arches: ['x86_64'],
  });
  assert.deepEqual(planFanOut({ ...none, exclusiveArch: ['%{arm64}'] }, ['x86_64', 'aarch64']), {
    kind: 'tasks',
    arches: ['aarch64'],
  });
});

test('ExcludeArch drops architectures; excluding all of them is reported', () => {
  assert.deepEqual(planFanOut({ ...none, excludeArch: ['aarch64'] }, ['x86_64', 'aarch64']), {
    kind: 'tasks',
    arches: ['x86_64'],
  });
  assert.equal(planFanOut({ ...none, exclusiveArch: ['s390x'] }, ['x86_64']).kind, 'excluded');
});

test('x86-64 levels are flavours of x86_64, as ALBS treats them', () => {
  const targets = ['x86_64', 'x86_64_v2', 'aarch64'];
  const arches = (info: Partial<SrpmArchInfo>) => {
    const r = planFanOut({ ...none, ...info }, targets);
    return r.kind === 'tasks' ? r.arches : [];
  };
  assert.deepEqual(arches({ exclusiveArch: ['x86_64'] }), ['x86_64', 'x86_64_v2']);
  assert.deepEqual(arches({ exclusiveArch: ['%{x86_64}'] }), ['x86_64', 'x86_64_v2']);
  assert.deepEqual(arches({ exclusiveArch: ['x86_64_v2'] }), ['x86_64_v2']);
  assert.deepEqual(arches({ excludeArch: ['x86_64'] }), ['aarch64']);
  assert.deepEqual(arches({ excludeArch: ['x86_64_v2'] }), ['x86_64', 'aarch64']);
  assert.deepEqual(arches({ exclusiveArch: ['x86_64'], excludeArch: ['x86_64_v2'] }), ['x86_64']);
});
