import { byCodeUnits } from '../core/ids.js';
import { create } from 'xmlbuilder2';
import { finishXml } from '../core/xml-text.js';
import { cves, evrOf, type Advisory } from './advisory.js';

/**
 * OVAL 5.10 definitions for one repository (what `oscap oval eval` reads): one `patch` definition per
 * released advisory, true when the system has a package the advisory fixes at an earlier EVR *and* that
 * package is signed by one of the repository's keys (as the AlmaLinux/RHEL streams check: a package from
 * elsewhere says nothing about this advisory). rpminfo tests compare `evr` as `evr_string` "less than" with
 * an explicit epoch, and `signature_keyid` (16 lowercase hex digits) "equals".
 */
const DEF = 'http://oval.mitre.org/XMLSchema/oval-definitions-5';
const COMMON = 'http://oval.mitre.org/XMLSchema/oval-common-5';
const LINUX = 'http://oval.mitre.org/XMLSchema/oval-definitions-5#linux';

export interface OvalOptions {
  readonly repo: string;
  /** OVAL id namespace, e.g. `dev.lenix.distro`. */
  readonly namespace: string;
  readonly productVersion: string;
  readonly timestamp: number;
  /** Fingerprints of the repository's signing keys. */
  readonly keys: readonly string[];
  readonly from: string;
  readonly rights: string;
  readonly selfUrl: (id: string) => string;
}

/** The number of an advisory's definition: YYYY followed by its number, e.g. 2026 + 0042 → 20260042. */
function defNumber(a: Advisory): number {
  const m = /-(\d{4}):(\d+)$/.exec(a.id)!;
  return Number(`${m[1]}${m[2]!.padStart(4, '0')}`);
}

export function renderOval(advisories: readonly Advisory[], o: OvalOptions): string {
  const ns = o.namespace;
  const id = (kind: 'def' | 'tst' | 'obj' | 'ste', n: number) => `oval:${ns}:${kind}:${n}`;
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const keyIds = [...new Set(o.keys.map((k) => k.slice(-16).toLowerCase()))].sort();
  const doc = create({ version: '1.0', encoding: 'UTF-8' }).ele(DEF, 'oval_definitions', {
    'xmlns:oval': COMMON,
    'xmlns:red-def': LINUX,
    'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
    'xsi:schemaLocation': `${COMMON} oval-common-schema.xsd ${DEF} oval-definitions-schema.xsd ${LINUX} linux-definitions-schema.xsd`,
  });
  const gen = doc.ele(DEF, 'generator');
  gen.ele(COMMON, 'oval:product_name').txt('Lenix');
  gen.ele(COMMON, 'oval:product_version').txt(o.productVersion);
  gen.ele(COMMON, 'oval:schema_version').txt('5.10');
  gen.ele(COMMON, 'oval:timestamp').txt(new Date(o.timestamp).toISOString().slice(0, 19));
  // The schema wants at least one child in each section: a repository without advisories has none.
  if (advisories.length === 0 || keyIds.length === 0) return finishXml(`${doc.end({ prettyPrint: true })}\n`);
  const defs = doc.ele(DEF, 'definitions');
  const tests = doc.ele(DEF, 'tests');
  const objects = doc.ele(DEF, 'objects');
  const states = doc.ele(DEF, 'states');
  // One object per package name, one signature state per document: shared by every definition.
  const names = [...new Set(advisories.flatMap((a) => a.packages.map((p) => p.name)))].sort();
  const objectOf = new Map(names.map((n, i) => [n, id('obj', i + 1)]));
  for (const [name, oid] of objectOf)
    objects.ele(LINUX, 'red-def:rpminfo_object', { id: oid, version: '1' }).ele(LINUX, 'red-def:name').txt(name);
  const signedState = (k: string, i: number) => {
    const sid = id('ste', i + 1);
    states
      .ele(LINUX, 'red-def:rpminfo_state', { id: sid, version: '1' })
      .ele(LINUX, 'red-def:signature_keyid', { operation: 'equals' })
      .txt(k);
    return sid;
  };
  const keyStates = keyIds.map(signedState);
  const signedTests = new Map<string, string[]>(); // package name → one test per key
  let extra = 1;
  const signedBy = (name: string) => {
    if (!signedTests.has(name)) {
      signedTests.set(
        name,
        keyStates.map((sid, i) => {
          const tid = id('tst', 100_000_000 + extra++);
          const t = tests.ele(LINUX, 'red-def:rpminfo_test', {
            check: 'at least one',
            comment: `${name} is signed with key ${keyIds[i]}`,
            id: tid,
            version: '1',
          });
          t.ele(LINUX, 'red-def:object', { object_ref: objectOf.get(name)! });
          t.ele(LINUX, 'red-def:state', { state_ref: sid });
          return tid;
        }),
      );
    }
    return signedTests.get(name)!;
  };

  for (const a of [...advisories].sort((x, y) => byCodeUnits(x.id, y.id))) {
    const n = defNumber(a);
    const d = defs.ele(DEF, 'definition', { class: 'patch', id: id('def', n), version: String(a.version) });
    const md = d.ele(DEF, 'metadata');
    md.ele(DEF, 'title').txt(`${a.id}: ${a.title}${a.severity ? ` (${a.severity})` : ''}`);
    md.ele(DEF, 'affected', { family: 'unix' }).ele(DEF, 'platform').txt(o.repo);
    md.ele(DEF, 'reference', { ref_id: a.id, ref_url: o.selfUrl(a.id), source: 'LENIX' });
    for (const c of cves(a))
      md.ele(DEF, 'reference', { ref_id: c, ref_url: `https://www.cve.org/CVERecord?id=${c}`, source: 'CVE' });
    md.ele(DEF, 'description').txt(a.description || a.title);
    const adv = md.ele(DEF, 'advisory', { from: o.from });
    if (a.severity) adv.ele(DEF, 'severity').txt(a.severity);
    adv.ele(DEF, 'rights').txt(o.rights);
    adv.ele(DEF, 'issued', { date: day(a.issued) });
    adv.ele(DEF, 'updated', { date: day(a.updated) });
    for (const c of cves(a)) adv.ele(DEF, 'cve', { href: `https://www.cve.org/CVERecord?id=${c}` }).txt(c);
    const any = d.ele(DEF, 'criteria', { operator: 'OR' });
    const byName = new Map<string, string>();
    for (const p of a.packages) if (!byName.has(p.name)) byName.set(p.name, evrOf(p));
    let k = 0;
    for (const [name, evr] of [...byName].sort(([x], [y]) => byCodeUnits(x, y))) {
      k++;
      const sid = id('ste', n * 1000 + k);
      states
        .ele(LINUX, 'red-def:rpminfo_state', { id: sid, version: String(a.version) })
        .ele(LINUX, 'red-def:evr', { datatype: 'evr_string', operation: 'less than' })
        .txt(evr);
      const tid = id('tst', n * 1000 + k);
      const t = tests.ele(LINUX, 'red-def:rpminfo_test', {
        check: 'at least one',
        comment: `${name} is earlier than ${evr}`,
        id: tid,
        version: String(a.version),
      });
      t.ele(LINUX, 'red-def:object', { object_ref: objectOf.get(name)! });
      t.ele(LINUX, 'red-def:state', { state_ref: sid });
      const both = any.ele(DEF, 'criteria', { operator: 'AND' });
      both.ele(DEF, 'criterion', { comment: `${name} is earlier than ${evr}`, test_ref: tid });
      const keys = both.ele(DEF, 'criteria', { operator: 'OR' });
      for (const [i, st] of signedBy(name).entries())
        keys.ele(DEF, 'criterion', { comment: `${name} is signed with key ${keyIds[i]}`, test_ref: st });
    }
  }
  return finishXml(`${doc.end({ prettyPrint: true })}\n`);
}
