import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planRelease, type CandidatePackage, type RepoPackage } from './plan.js';

const cand = (nevra: string, sha = nevra, buildId = 1): CandidatePackage => {
  const arch = nevra.split('.').pop()!;
  return { artifactId: 1, sha256: sha, name: `${nevra}.rpm`, arch, nevra, buildId };
};
const inRepo = (nevra: string, arch: string, sha = nevra): RepoPackage => ({
  artifactId: 1,
  sha256: sha,
  name: `${nevra}.rpm`,
  arch,
  nevra,
  buildId: 0,
});

test('noarch packages go under every repository arch; others only under their own', () => {
  const p = planRelease(
    [],
    [cand('a-1.0-1.noarch'), cand('b-1.0-1.x86_64'), cand('c-1.0-1.s390x')],
    ['x86_64', 'aarch64'],
  );
  assert.deepEqual(
    p.packages.map((x) => `${x.arch}:${x.nevra}`),
    ['aarch64:a-1.0-1.noarch', 'x86_64:a-1.0-1.noarch', 'x86_64:b-1.0-1.x86_64'],
  );
  assert.equal(p.skipped.length, 1);
});

test('a newer version replaces the older one; the same bytes are unchanged; others stay', () => {
  const current = [inRepo('p-1.0-1.noarch', 'x86_64'), inRepo('q-2.0-1.x86_64', 'x86_64')];
  const p = planRelease(current, [cand('p-1.1-1.noarch'), cand('q-2.0-1.x86_64')], ['x86_64']);
  assert.deepEqual(
    p.replaced.map((r) => `${r.from.nevra}->${r.to.nevra}`),
    ['p-1.0-1.noarch->p-1.1-1.noarch'],
  );
  assert.deepEqual(
    p.unchanged.map((u) => u.nevra),
    ['q-2.0-1.x86_64'],
  );
  assert.deepEqual(
    p.packages.map((x) => x.nevra),
    ['p-1.1-1.noarch', 'q-2.0-1.x86_64'],
  );
});

test('the same NEVRA with other bytes is refused; an older version is skipped', () => {
  assert.throws(
    () => planRelease([inRepo('p-1.0-1.noarch', 'x86_64', 'aaa')], [cand('p-1.0-1.noarch', 'bbb')], ['x86_64']),
    { code: 'RELEASE_CONFLICT' },
  );
  const p = planRelease([inRepo('p-2.0-1.noarch', 'x86_64')], [cand('p-1.0-1.noarch')], ['x86_64']);
  assert.equal(p.skipped.length, 1);
  assert.deepEqual(
    p.packages.map((x) => x.nevra),
    ['p-2.0-1.noarch'],
  );
});

test('a build repository takes a rebuild of the same NEVRA with other bytes', () => {
  const p = planRelease([inRepo('p-1.0-1.noarch', 'x86_64', 'aaa')], [cand('p-1.0-1.noarch', 'bbb')], ['x86_64'], {
    sameNevraReplaces: true,
  });
  assert.deepEqual(
    p.packages.map((x) => x.sha256),
    ['bbb'],
  );
  assert.equal(p.replaced.length, 1);
});

test('a repository keeping every version adds the new one beside the old; keeping N drops the oldest beyond N', () => {
  const current = [inRepo('p-1.0-1.noarch', 'x86_64'), inRepo('p-1.1-1.noarch', 'x86_64')];
  const all = planRelease(current, [cand('p-1.2-1.noarch')], ['x86_64'], { keepVersions: 0 });
  assert.deepEqual(
    all.packages.map((x) => x.nevra),
    ['p-1.0-1.noarch', 'p-1.1-1.noarch', 'p-1.2-1.noarch'],
  );
  assert.deepEqual(
    all.added.map((x) => x.nevra),
    ['p-1.2-1.noarch'],
  );
  assert.equal(all.replaced.length, 0);
  const two = planRelease(current, [cand('p-1.2-1.noarch')], ['x86_64'], { keepVersions: 2 });
  assert.deepEqual(
    two.packages.map((x) => x.nevra),
    ['p-1.1-1.noarch', 'p-1.2-1.noarch'],
  );
  assert.deepEqual(
    two.replaced.map((r) => `${r.from.nevra}->${r.to.nevra}`),
    ['p-1.0-1.noarch->p-1.2-1.noarch'],
  );
  // Still: an older version than the newest is skipped, an old version released again is unchanged.
  const old = planRelease(current, [cand('p-0.9-1.noarch'), cand('p-1.0-1.noarch')], ['x86_64'], { keepVersions: 0 });
  assert.deepEqual(
    old.skipped.map((x) => x.why),
    ['older than p-1.1-1.noarch already in x86_64'],
  );
  assert.deepEqual(
    old.unchanged.map((x) => x.nevra),
    ['p-1.0-1.noarch'],
  );
});

test('untouched packages keep their places; planned ones are merged in, in snapshot order, whatever order came in', () => {
  const sorted = ['b', 'd', 'f', 'h'].map((n) => inRepo(`${n}-1.0-1.noarch`, 'x86_64'));
  const names = (p: { packages: readonly { arch: string; name: string }[] }) =>
    p.packages.map((x) => `${x.arch}:${x.name}`);
  const want = [
    'aarch64:e-1.0-1.noarch.rpm',
    'x86_64:a-1.0-1.noarch.rpm',
    'x86_64:b-1.0-1.noarch.rpm',
    'x86_64:d-1.0-1.noarch.rpm',
    'x86_64:e-1.0-1.noarch.rpm',
    'x86_64:f-1.1-1.noarch.rpm',
    'x86_64:h-1.0-1.noarch.rpm',
    'x86_64:z-1.0-1.noarch.rpm',
  ];
  const news = [cand('z-1.0-1.noarch'), cand('f-1.1-1.noarch'), cand('a-1.0-1.noarch'), cand('e-1.0-1.noarch')];
  const withAarch = (current: RepoPackage[]) => [inRepo('e-1.0-1.noarch', 'aarch64'), ...current];
  assert.deepEqual(names(planRelease(withAarch(sorted), news, ['x86_64'])), want);
  // A list that is not in snapshot order (one stored by an older Lenix) comes out sorted all the same.
  assert.deepEqual(names(planRelease(withAarch([...sorted].reverse()), news, ['x86_64'])), want);
});
