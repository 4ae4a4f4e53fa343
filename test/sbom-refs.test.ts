import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { BuildrootItem, SbomInput, SbomPackage, SbomStep } from '../src/attest/sbom.js';
import { renderSbom } from '../src/attest/sbom-render.js';
import { SBOM_FORMATS } from '../src/attest/sbom.js';

/** A small seeded generator (xorshift), so a failing case can be replayed from its seed. */
function rng(seed: number) {
  let x = seed || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Random build, package and snapshot SBOM inputs, as every build state gives them: no packages yet (queued,
 * failed at the SRPM), some arches done, the same noarch package under several arches, buildroot records of
 * several tasks naming the same packages (from the same or another origin), names that only differ in characters
 * a ref cannot hold, steps without times.
 */
function input(seed: number): SbomInput {
  const r = rng(seed);
  const names = ['a', 'a+b', 'a-b', 'lib.x', 'lib_x', 'p'];
  const arches = ['src', 'noarch', 'x86_64', 'aarch64'];
  const packages: SbomPackage[] = [];
  for (let i = r.int(6); i > 0; i--) {
    const name = r.pick(names);
    const arch = r.pick(arches);
    const p: SbomPackage = {
      fileName: `${name}-1.0-1.${arch}.rpm`,
      name,
      epoch: r.pick([null, 1]),
      version: '1.0',
      release: '1',
      arch,
      sha256: sha(`${name}.${arch}.${r.int(2)}`),
      size: 100,
      license: r.pick([null, 'MIT', 'GPLv2+']),
      summary: r.pick([null, 'x']),
      url: null,
      sourceRpm: arch === 'src' ? null : `${name}-1.0-1.src.rpm`,
      requires: r.pick([[], ['a'], ['/bin/sh']]),
      provides: [],
      signingKey: r.pick([null, 'F'.repeat(40)]),
      buildId: 3,
      buildNode: r.pick([null, 'node-1']),
      buildTime: null,
      gitUrl: 'https://git.example/x.git',
      commit: 'c'.repeat(40),
      ledgerEntries: [],
    };
    packages.push(p);
    // The same file under a second repository arch (a noarch package in a snapshot).
    if (r.int(3) === 0) packages.push({ ...p });
  }
  const buildroot: BuildrootItem[] = [];
  for (let i = r.int(8); i > 0; i--)
    buildroot.push({
      name: r.pick(names),
      version: r.pick(['1', '1:2.0-3']),
      manager: r.pick(['rpm', 'dpkg', 'tool'] as const),
      ...(r.int(2) ? { arch: r.pick(['x86_64', 'noarch']) } : {}),
      ...(r.int(2) ? { sha256: sha(String(r.int(3))) } : {}),
      ...(r.int(2) ? { origin: r.pick(['host', 'el9-build@4']) } : {}),
    });
  const steps: SbomStep[] = [];
  for (let i = r.int(4); i > 0; i--)
    steps.push({
      uid: `task:${i}`,
      name: r.pick(['srpm', 'build x86_64', 'sign', 'test']),
      type: r.pick(['build', 'test', 'other'] as const),
      state: r.pick(['queued', 'running', 'succeeded', 'failed']),
      buildId: 3,
      node: r.pick([null, 'node-1']),
      start: r.pick([null, '2026-11-25T10:00:00.000Z']),
      end: null,
      after: [],
      outputs: packages.length > 0 && r.int(2) ? [packages[0]!.sha256] : [],
    });
  return {
    kind: r.pick(['package', 'build', 'snapshot'] as const),
    identity: 'build:3',
    title: 'x',
    version: '1.0-1',
    timestamp: '2026-11-25T10:05:00.000Z',
    supplier: 'Lenix',
    vendor: 'lenix',
    distro: 'lenix',
    toolVersion: '0.1.0',
    packages,
    buildroot,
    steps,
  };
}

test('every SBOM is the same document each time it is rendered: refs come from content, unique, never random', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const i = input(seed);
    for (const format of SBOM_FORMATS) {
      const one = renderSbom(i, format);
      assert.equal(renderSbom(structuredClone(i), format), one, `seed ${seed} ${format}: rendered twice, differs`);
      assert.doesNotMatch(one, /BomRef\./, `seed ${seed} ${format}: a generated (random) bom-ref`);
      if (format === 'cyclonedx-json') {
        const refs = [...one.matchAll(/"bom-ref": ?"([^"]+)"/g)].map((m) => m[1]!);
        assert.equal(new Set(refs).size, refs.length, `seed ${seed}: duplicate bom-refs ${refs.join(' ')}`);
      }
    }
  }
});
