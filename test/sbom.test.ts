import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRpmPurl, rpmPurl, type SbomInput, type SbomPackage } from '../src/attest/sbom.js';
import { renderSbom } from '../src/attest/sbom-render.js';
import { cyclonedxJsonErrors, cyclonedxXmlErrors, parseSpdxTagValue, spdxJsonErrors } from './support/schemas.js';

const base = {
  buildId: 7,
  gitUrl: 'https://git.example/rpms/multi.git',
  commit: 'c'.repeat(40),
  signingKey: 'F'.repeat(40),
  buildNode: 'node-1',
  buildTime: '2026-11-25T10:00:00.000Z',
  ledgerEntries: [3, 4, 9],
  size: 1000,
  url: 'https://example.org/multi',
  summary: 'A sample',
};
const pkg = (p: Partial<SbomPackage> & Pick<SbomPackage, 'name' | 'arch' | 'sha256'>): SbomPackage => ({
  ...base,
  fileName: `${p.name}-2.0-1.${p.arch}.rpm`,
  epoch: null,
  version: '2.0',
  release: '1',
  license: 'MIT',
  sourceRpm: 'multi-2.0-1.src.rpm',
  requires: [],
  provides: [],
  ...p,
});

const input: SbomInput = {
  kind: 'build',
  identity: 'build:7',
  title: 'multi',
  version: '2.0-1',
  timestamp: '2026-11-25T10:05:00.000Z',
  supplier: 'Example Linux',
  vendor: 'Example',
  distro: 'example-9',
  toolVersion: '0.1.0',
  packages: [
    pkg({
      name: 'multi',
      arch: 'src',
      sha256: '1'.repeat(64),
      fileName: 'multi-2.0-1.src.rpm',
      sourceRpm: null,
      license: 'GPLv2+ and MIT',
    }),
    pkg({
      name: 'multi',
      arch: 'x86_64',
      sha256: '2'.repeat(64),
      epoch: 3,
      requires: ['multi-config', '/bin/sh', 'libc.so.6()(64bit)'],
      license: 'MIT OR Apache-2.0',
    }),
    pkg({
      name: 'multi-config',
      arch: 'noarch',
      sha256: '3'.repeat(64),
      provides: ['multi-config', 'config(multi-config)'],
      license: null,
    }),
  ],
  buildroot: [
    { name: 'gcc', version: '12.2.0-14', manager: 'dpkg' },
    { name: 'rpmbuild', version: 'RPM version 4.18.0', manager: 'tool' },
  ],
  steps: [
    {
      uid: 'task:1',
      name: 'srpm',
      type: 'build',
      buildId: 7,
      node: 'node-1',
      state: 'succeeded',
      start: '2026-11-25T10:00:00.000Z',
      end: '2026-11-25T10:01:00.000Z',
      after: [],
      outputs: ['1'.repeat(64)],
    },
    {
      uid: 'task:2',
      name: 'build x86_64',
      type: 'build',
      buildId: 7,
      node: 'node-1',
      state: 'succeeded',
      start: '2026-11-25T10:01:00.000Z',
      end: '2026-11-25T10:03:00.000Z',
      after: ['task:1'],
      outputs: ['2'.repeat(64), '3'.repeat(64)],
    },
    {
      uid: 'task:3',
      name: 'sign',
      type: 'other',
      buildId: 7,
      node: 'signer-1',
      state: 'succeeded',
      start: null,
      end: null,
      after: ['task:2'],
      outputs: [],
    },
    {
      uid: 'task:4',
      name: 'test',
      type: 'test',
      buildId: 7,
      node: 'tester-1',
      state: 'succeeded',
      start: null,
      end: null,
      after: ['task:3'],
      outputs: [],
    },
  ],
};

test('CycloneDX 1.6 JSON and XML validate against the official schema and XSD, with formulation and dependencies', async () => {
  const json = renderSbom(input, 'cyclonedx-json');
  assert.equal(await cyclonedxJsonErrors(json), null);
  const xml = renderSbom(input, 'cyclonedx-xml');
  assert.equal(cyclonedxXmlErrors(xml), null);
  const bom = JSON.parse(json);
  assert.equal(bom.specVersion, '1.6');
  assert.equal(bom.components.length, 3);
  const bin = bom.components.find((c: any) => c['bom-ref'] === `rpm-${'2'.repeat(64)}`);
  assert.equal(bin.version, '3:2.0-1');
  assert.deepEqual(bin.hashes, [{ alg: 'SHA-256', content: '2'.repeat(64) }]);
  assert.deepEqual(bin.licenses, [{ expression: 'MIT OR Apache-2.0' }]);
  assert.deepEqual(
    bom.components.find((c: any) => c.purl.includes('arch=src')).licenses,
    [{ license: { name: 'GPLv2+ and MIT' } }],
    'a non-SPDX License tag is kept as a named license',
  );
  assert.equal(bin.supplier.name, 'Example Linux');
  const prop = (c: any, n: string) => c.properties.find((p: any) => p.name === n)?.value;
  assert.equal(prop(bin, 'lenix:signing-key'), 'F'.repeat(40));
  assert.equal(prop(bin, 'lenix:build-node'), 'node-1');
  assert.equal(prop(bin, 'lenix:source-rpm'), 'multi-2.0-1.src.rpm');
  assert.equal(prop(bin, 'lenix:ledger-entries'), '3,4,9');
  assert.deepEqual(
    bom.dependencies.find((d: any) => d.ref === bin['bom-ref']).dependsOn,
    [`rpm-${'3'.repeat(64)}`],
    'Requires resolved by Provides inside the document',
  );
  const wf = bom.formulation[0].workflows[0];
  assert.deepEqual(
    wf.tasks.map((t: any) => t.name),
    ['srpm', 'build x86_64', 'sign', 'test'],
  );
  assert.deepEqual(bom.formulation[0].components.map((c: any) => c.name).sort(), ['gcc', 'rpmbuild']);
  // Invalid CycloneDX is caught by the same validators (they can fail).
  assert.notEqual(await cyclonedxJsonErrors(JSON.stringify({ ...bom, components: [{ name: 'x' }] })), null);
  assert.notEqual(
    cyclonedxXmlErrors(xml.replace('<components>', '<componentz>').replace('</components>', '</componentz>')),
    null,
  );
});

test('SPDX 2.3 JSON and tag-value validate against the official schema and say the same', () => {
  const json = JSON.parse(renderSbom(input, 'spdx-json'));
  assert.equal(spdxJsonErrors(json), null);
  for (const kind of ['package', 'snapshot'] as const) {
    assert.equal(spdxJsonErrors(JSON.parse(renderSbom({ ...input, kind }, 'spdx-json'))), null, kind);
    assert.equal(cyclonedxXmlErrors(renderSbom({ ...input, kind }, 'cyclonedx-xml')), null, kind);
  }
  const tv = parseSpdxTagValue(renderSbom(input, 'spdx-tag-value'));
  assert.equal(spdxJsonErrors(tv), null);
  assert.deepEqual(
    tv['packages'].map((p: any) => [p.SPDXID, p.versionInfo, p.licenseDeclared, p.checksums]),
    json.packages.map((p: any) => [p.SPDXID, p.versionInfo, p.licenseDeclared, p.checksums]),
  );
  assert.deepEqual(tv['relationships'], json.relationships);
  const rel = (type: string) =>
    json.relationships
      .filter((r: any) => r.relationshipType === type)
      .map((r: any) => `${r.spdxElementId} ${r.relatedSpdxElement}`);
  assert.deepEqual(rel('GENERATED_FROM').sort(), [
    `SPDXRef-rpm-${'2'.repeat(64)} SPDXRef-rpm-${'1'.repeat(64)}`,
    `SPDXRef-rpm-${'3'.repeat(64)} SPDXRef-rpm-${'1'.repeat(64)}`,
  ]);
  assert.deepEqual(rel('DEPENDS_ON'), [`SPDXRef-rpm-${'2'.repeat(64)} SPDXRef-rpm-${'3'.repeat(64)}`]);
  assert.equal(rel('BUILD_DEPENDENCY_OF').length, 2);
  assert.equal(rel('BUILD_TOOL_OF').length, 2);
  const src = json.packages.find((p: any) => p.name === 'multi' && p.primaryPackagePurpose === 'SOURCE');
  assert.match(src.licenseDeclared, /^LicenseRef-/);
  assert.deepEqual(
    json.hasExtractedLicensingInfos.map((l: any) => l.extractedText),
    ['GPLv2+ and MIT'],
  );
  assert.notEqual(spdxJsonErrors({ ...json, packages: [{ name: 'x' }] }), null);
});

test('every format is deterministic, and purls parse back to the package', () => {
  for (const f of ['cyclonedx-json', 'cyclonedx-xml', 'spdx-json', 'spdx-tag-value'] as const) {
    assert.equal(renderSbom(input, f), renderSbom(JSON.parse(JSON.stringify(input)), f), f);
    assert.notEqual(
      renderSbom(input, f),
      renderSbom({ ...input, packages: input.packages.slice(1) }, f),
      `${f} changes with its input`,
    );
  }
  for (const p of input.packages) {
    const back = parseRpmPurl(rpmPurl(p, input.vendor, input.distro));
    assert.deepEqual(
      [back.name, back.version, back.release, back.epoch, back.arch, back.vendor, back.distro],
      [p.name, p.version, p.release, p.epoch, p.arch, 'example', 'example-9'],
    );
  }
  assert.equal(
    rpmPurl(input.packages[1]!, 'Example', 'example-9'),
    `pkg:rpm/example/multi@2.0-1?arch=x86_64&distro=example-9&epoch=3`,
  );
});
