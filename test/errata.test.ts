import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seeded } from './support/random.js';
import { validateDraft, parseReference, type Advisory } from '../src/errata/advisory.js';
import { checkEcosystem, osvId, parseOsv, renderOsv } from '../src/errata/osv.js';
import { parseUpdateinfo, renderUpdateinfo } from '../src/errata/updateinfo.js';
import { osvErrors } from './support/schemas.js';

const advisory: Advisory = {
  id: 'LXSA-2026:0007',
  repo: 'distro',
  type: 'security',
  severity: 'Important',
  title: 'demo security update',
  synopsis: 'Important: demo security update',
  description: 'Fixes <two> & "three" flaws.',
  issued: Date.UTC(2026, 10, 1, 8, 30, 0),
  updated: Date.UTC(2026, 10, 2, 9, 0, 5),
  version: 2,
  status: 'released',
  rebootSuggested: true,
  references: [parseReference('CVE-2026-0001'), parseReference('https://bugs.example.org/show_bug.cgi?id=42')],
  packages: [
    {
      name: 'demo',
      epoch: 1,
      version: '2.0',
      release: '3.el9',
      arch: 'x86_64',
      src: 'demo-2.0-3.el9.src.rpm',
      filename: 'demo-2.0-3.el9.x86_64.rpm',
      sha256: 'a'.repeat(64),
    },
    {
      name: 'demo-doc',
      epoch: 0,
      version: '2.0',
      release: '3.el9',
      arch: 'noarch',
      src: 'demo-2.0-3.el9.src.rpm',
      filename: 'demo-doc-2.0-3.el9.noarch.rpm',
      sha256: null,
    },
  ],
  upstreamId: null,
};

test('updateinfo.xml is written the way dnf reads it and reads back', () => {
  const xml = renderUpdateinfo([advisory], {
    from: 'errata@example.org',
    rights: 'Copyright',
    collection: 'distro-x86_64',
    arches: ['x86_64'],
  });
  assert.match(xml, /<update from="errata@example.org" status="final" type="security" version="2">/);
  assert.match(xml, /<issued date="2026-11-01 08:30:00"\/>/);
  assert.match(xml, /<updated date="2026-11-02 09:00:05"\/>/);
  assert.match(xml, /<severity>Important<\/severity>/);
  assert.match(
    xml,
    /<package name="demo" epoch="1" version="2.0" release="3.el9" arch="x86_64" src="demo-2.0-3.el9.src.rpm">\s*<filename>demo-2.0-3.el9.x86_64.rpm<\/filename>\s*<sum type="sha256">a{64}<\/sum>\s*<reboot_suggested>True<\/reboot_suggested>/,
  );
  assert.match(
    xml,
    /<reference href="https:\/\/www.cve.org\/CVERecord\?id=CVE-2026-0001" id="CVE-2026-0001" type="cve"/,
  );
  assert.match(xml, /Fixes &lt;two&gt; &amp; "three" flaws./);
  const [back] = parseUpdateinfo(xml);
  assert.deepEqual(
    [back!.id, back!.type, back!.severity, back!.title, back!.issued, back!.rebootSuggested],
    [advisory.id, 'security', 'Important', advisory.title, advisory.issued, true],
  );
  assert.deepEqual(
    back!.packages.map((p) => `${p.name}-${p.epoch}:${p.version}-${p.release}.${p.arch}`),
    ['demo-doc-0:2.0-3.el9.noarch', 'demo-1:2.0-3.el9.x86_64'],
  );
  assert.deepEqual(
    back!.references.map((r) => r.type),
    ['cve', 'bugzilla'],
  );
  assert.equal(
    renderUpdateinfo([advisory], { from: 'f', rights: 'r', collection: 'c', arches: ['aarch64'] }).includes(
      'name="demo" ',
    ),
    false,
    'an arch folder lists its own packages and noarch',
  );
  assert.throws(() => parseUpdateinfo('<notupdates/>'), { code: 'ERRATA_INVALID' });
});

test('OSV records validate against the official schema; unregistered prefixes get x_, unregistered ecosystems are refused', () => {
  const rec = JSON.parse(renderOsv(advisory, 'AlmaLinux:9', 'https://lenix.example/api/v1/errata/LXSA-2026:0007'));
  assert.equal(osvErrors(rec), null);
  assert.equal(rec.id, 'x_LXSA-2026:0007');
  assert.deepEqual(rec.upstream, ['CVE-2026-0001']);
  assert.deepEqual(
    rec.affected.map((a: any) => [a.package.name, a.ranges[0].events[1].fixed]),
    [
      ['demo', '1:2.0-3.el9'],
      ['demo-doc', '2.0-3.el9'],
    ],
  );
  assert.equal(osvId('ALSA-2026:0001'), 'ALSA-2026:0001');
  assert.equal(
    osvErrors(
      JSON.parse(
        renderOsv(
          { ...advisory, id: 'ALBA-2026:0002', type: 'bugfix', severity: null, references: [] },
          'Rocky Linux:9',
          null,
        ),
      ),
    ),
    null,
  );
  assert.equal(checkEcosystem('AlmaLinux:9'), 'AlmaLinux:9');
  assert.throws(() => checkEcosystem('Lenix:9'), /not a registered OSV ecosystem/);
  assert.notEqual(
    osvErrors({ ...rec, affected: [{ package: { ecosystem: 'Lenix:9', name: 'demo' } }] }),
    null,
    'the schema itself refuses it',
  );
  const back = parseOsv(JSON.stringify(rec));
  assert.deepEqual(
    back.packages.map((p) => [p.name, p.epoch, p.version, p.release]),
    [
      ['demo', 1, '2.0', '3.el9'],
      ['demo-doc', 0, '2.0', '3.el9'],
    ],
  );
  assert.equal(back.severity, 'Important');
});

test('advisory fields are checked', () => {
  const d = {
    type: 'security' as const,
    severity: 'Important' as const,
    title: 't',
    synopsis: '',
    description: '',
    rebootSuggested: false,
    references: [],
    packages: advisory.packages,
  };
  validateDraft(d);
  assert.throws(() => validateDraft({ ...d, severity: null }), /needs a severity/);
  assert.throws(() => validateDraft({ ...d, severity: 'important' as never }), /capitalised/);
  assert.throws(() => validateDraft({ ...d, title: ' ' }), { code: 'ERRATA_INVALID' });
  assert.throws(
    () => validateDraft({ ...d, packages: [advisory.packages[0]!, advisory.packages[0]!] }),
    /listed twice/,
  );
  assert.throws(() => parseReference('CVE-26-1'), /not a CVE id/);
  assert.throws(() => parseReference('bug 42'), { code: 'ERRATA_INVALID' });
  validateDraft({ ...d, type: 'bugfix', severity: null });
});

/** Strings mixing printable text, markup, every C0 control, DEL and C1, lone surrogates, U+FFFE/U+FFFF and astral characters. */
function hostileStrings(n: number, seed = 2026): string[] {
  const next = seeded(seed);
  const pools = [
    () => String.fromCharCode(0x20 + Math.floor(next() * 95)),
    () => '<>&"\''.charAt(Math.floor(next() * 5)),
    () => String.fromCharCode(Math.floor(next() * 0x20)),
    () => String.fromCharCode(0x7f + Math.floor(next() * 0x21)),
    () => String.fromCharCode(0xd800 + Math.floor(next() * 0x800)),
    () => (next() < 0.5 ? '\ufffe' : '\uffff'),
    () => String.fromCodePoint(0x1f300 + Math.floor(next() * 0x100)),
    () => 'é€\u202e',
  ];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = 'x';
    const len = 1 + Math.floor(next() * 12);
    for (let j = 0; j < len; j++) s += next() < 0.7 ? pools[0]!() : pools[Math.floor(next() * pools.length)]!();
    out.push(s);
  }
  return out;
}

test('property: no advisory text makes an invalid XML document; what the API accepts reads back unchanged', async () => {
  const { XmlDocument } = await import('libxml2-wasm');
  const { renderOval } = await import('../src/errata/oval.js');
  const { renderAtom } = await import('../src/errata/atom.js');
  const wellFormed = (xml: string) => {
    const doc = XmlDocument.fromString(xml);
    doc.dispose();
  };
  let accepted = 0;
  let refusedByWriter = 0;
  for (const s of hostileStrings(400)) {
    const a: Advisory = { ...advisory, title: s, synopsis: s, description: `${s}\n${s}` };
    let valid = true;
    try {
      validateDraft(a);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'ERRATA_INVALID', JSON.stringify(s));
      valid = false;
    }
    const writers = [
      () => renderUpdateinfo([a], { from: 'f', rights: 'r', collection: 'c' }),
      () =>
        renderOval([a], {
          repo: 'distro',
          namespace: 'dev.lenix.distro',
          productVersion: '9',
          timestamp: 0,
          keys: ['A'.repeat(40)],
          from: 'f',
          rights: 'r',
          selfUrl: (id) => `https://x.example/${id}`,
        }),
      () =>
        renderAtom([a], {
          title: 't',
          selfUrl: 'https://x.example/feed.atom',
          pageUrl: (id) => `https://x.example/${id}`,
          updated: 0,
          author: 'a',
        }),
    ];
    for (const write of writers) {
      let xml: string;
      try {
        xml = write();
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'XML_INVALID_TEXT', JSON.stringify(s));
        assert.equal(valid, false, `the writer refused what the API accepted: ${JSON.stringify(s)}`);
        refusedByWriter++;
        continue;
      }
      assert.doesNotThrow(() => wellFormed(xml), `not well-formed for ${JSON.stringify(s)}`);
    }
    if (valid) {
      accepted++;
      const [back] = parseUpdateinfo(renderUpdateinfo([a], { from: 'f', rights: 'r', collection: 'c' }));
      assert.equal(
        back!.title,
        s.trim(),
        'an accepted title reads back unchanged (the reader trims surrounding space, as upstream files are indented)',
      );
    }
  }
  assert.ok(
    accepted > 50 && refusedByWriter > 50,
    `both kinds were exercised (${accepted} accepted, ${refusedByWriter} refused by a writer)`,
  );
});
