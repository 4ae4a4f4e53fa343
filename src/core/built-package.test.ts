import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packageFileName, refuseUpload, type BuildFacts, type UploadedPackage } from './built-package.js';

const build: BuildFacts = {
  packageName: 'hello-c',
  packageEvr: '1.2-1',
  declaredPackages: [
    { name: 'hello-c', evr: '1.2-1' },
    { name: 'hello-c-doc', evr: '1.2-1' },
  ],
  srpmName: 'hello-c-1.2-1.src.rpm',
};
const rpm = (over: Partial<UploadedPackage> = {}): UploadedPackage => {
  const p = {
    name: 'hello-c',
    epoch: null,
    version: '1.2',
    release: '1',
    arch: 'x86_64',
    isSource: false,
    sourceRpm: 'hello-c-1.2-1.src.rpm',
    ...over,
  };
  return { fileName: packageFileName(p), ...p, ...over };
};
const binary = { kind: 'binary', arch: 'x86_64' };

test("the build's own packages, subpackages and noarch ones included, are accepted", () => {
  assert.equal(refuseUpload(rpm(), binary, build), null);
  assert.equal(refuseUpload(rpm({ name: 'hello-c-doc', arch: 'noarch' }), binary, build), null);
  const srpm = {
    name: 'hello-c',
    epoch: null,
    version: '1.2',
    release: '1',
    arch: 'src',
    isSource: true,
    sourceRpm: null,
  };
  assert.equal(
    refuseUpload(
      { ...srpm, fileName: 'hello-c-1.2-1.src.rpm' },
      { kind: 'srpm', arch: 'src' },
      { ...build, srpmName: null },
    ),
    null,
  );
});

test('foreign, renamed, wrong-arch, wrong-version and wrong-source packages are refused', () => {
  const cases: [string, UploadedPackage, { kind: string; arch: string }][] = [
    ['a package the spec does not declare', rpm({ name: 'glibc', sourceRpm: 'hello-c-1.2-1.src.rpm' }), binary],
    ['a renamed file', rpm({ fileName: 'hello-c-1.2-1.ppc64le.rpm' }), binary],
    ['another arch', rpm({ arch: 'ppc64le' }), binary],
    ['another version', rpm({ version: '9.9' }), binary],
    ['another source package', rpm({ sourceRpm: 'lenix-multi-2.0-1.src.rpm' }), binary],
    ['no source package', rpm({ sourceRpm: null }), binary],
    ['a binary package from the SRPM task', rpm(), { kind: 'srpm', arch: 'src' }],
    ['an epoch the spec does not have', rpm({ epoch: 3 }), binary],
  ];
  for (const [what, p, task] of cases) assert.notEqual(refuseUpload(p, task, build), null, what);
  const srpm = {
    name: 'glibc',
    epoch: null,
    version: '9.9',
    release: '1',
    arch: 'src',
    isSource: true,
    sourceRpm: null,
    fileName: 'glibc-9.9-1.src.rpm',
  };
  assert.notEqual(refuseUpload(srpm, { kind: 'srpm', arch: 'src' }, build), null, 'a foreign SRPM');
  assert.notEqual(
    refuseUpload({ ...srpm, name: 'hello-c', version: '1.2', fileName: 'hello-c-1.2-1.src.rpm' }, binary, build),
    null,
    'an SRPM from a binary task',
  );
});

test("builds from before the spec's packages were recorded still check names against the header and the SRPM", () => {
  const legacy = { ...build, declaredPackages: null };
  assert.equal(refuseUpload(rpm({ name: 'anything' }), binary, legacy), null);
  assert.notEqual(refuseUpload(rpm({ version: '9.9' }), binary, legacy), null);
  assert.notEqual(refuseUpload(rpm({ sourceRpm: 'x-1-1.src.rpm' }), binary, legacy), null);
});
