import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildManifest, manifestProofs, parseManifest, verifyManifestProof } from './manifest.js';

const pkgs = Array.from({ length: 1000 }, (_, i) => ({
  name: `p${i}-1.0-1.x86_64.rpm`,
  arch: 'x86_64',
  sha256: i.toString(16).padStart(64, '0'),
}));

test('a release manifest is canonical, parses back, and proves one package with a short proof', () => {
  const m = buildManifest([...pkgs].reverse());
  assert.equal(m.count, 1000);
  assert.deepEqual(buildManifest(pkgs).bytes, m.bytes, 'order of input does not matter');
  assert.equal(parseManifest(m.bytes).sha256, m.sha256);
  const [p] = manifestProofs(m, pkgs[77]!.sha256);
  assert.ok(p);
  assert.ok(p.proof.length <= 10);
  assert.ok(verifyManifestProof(p, m.root, m.count));
  assert.ok(!verifyManifestProof({ ...p, line: p.line.replace('p77', 'p78') }, m.root, m.count), 'another line');
  assert.ok(!verifyManifestProof({ ...p, index: p.index + 1 }, m.root, m.count), 'another position');
  assert.throws(
    () => parseManifest(new TextEncoder().encode(`${m.lines[1]}\n${m.lines[0]}\n`)),
    { code: 'BAD_REQUEST' },
    'unsorted',
  );
  assert.throws(() => buildManifest([{ name: 'a b', arch: 'x', sha256: 'f'.repeat(64) }]), { code: 'BAD_REQUEST' });
});
