import { byCodeUnits } from '../core/ids.js';
import { create } from 'xmlbuilder2';
import { LenixError } from '../core/errors.js';
import { finishXml } from '../core/xml-text.js';
import {
  CVE_RE,
  type Advisory,
  type AdvisoryPackage,
  type AdvisoryReference,
  type AdvisoryType,
  type Severity,
  SEVERITIES,
} from './advisory.js';

/**
 * updateinfo.xml in the form dnf reads (libsolv ext/repo_updateinfoxml.c): `<update from status type
 * version>` with a lowercase type; id, title, issued/updated as `YYYY-MM-DD HH:MM:SS` (UTC; a date alone reads
 * as 1970), rights, release, pushcount, a capitalised severity, summary, description, solution, references
 * (cve, bugzilla, self), and a pkglist whose packages carry name/epoch/version/release/arch/src, the file
 * name, the sha256, and `reboot_suggested` (read only on `<package>`). Element order as createrepo_c writes.
 */
export function updateinfoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

export interface UpdateinfoOptions {
  readonly from: string;
  readonly rights: string;
  readonly collection: string;
  /** Only packages of these arches (the repository arch folder, plus noarch). */
  readonly arches?: readonly string[];
}

export function renderUpdateinfo(advisories: readonly Advisory[], o: UpdateinfoOptions): string {
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele('updates');
  for (const a of [...advisories].sort((x, y) => byCodeUnits(x.id, y.id))) {
    const packages = a.packages.filter((p) => !o.arches || o.arches.includes(p.arch) || p.arch === 'noarch');
    if (packages.length === 0) continue;
    const u = root.ele('update', { from: o.from, status: 'final', type: a.type, version: String(a.version) });
    u.ele('id').txt(a.id);
    u.ele('title').txt(a.title);
    u.ele('issued', { date: updateinfoDate(a.issued) });
    u.ele('updated', { date: updateinfoDate(a.updated) });
    u.ele('rights').txt(o.rights);
    u.ele('release').txt('0');
    u.ele('pushcount').txt('1');
    u.ele('severity').txt(a.severity ?? 'None');
    u.ele('summary').txt(a.synopsis || a.title);
    u.ele('description').txt(a.description);
    u.ele('solution').txt(`Update the packages listed (dnf update --advisory ${a.id}).`);
    if (a.rebootSuggested) u.ele('reboot_suggested').txt('True');
    const refs = u.ele('references');
    for (const r of a.references) refs.ele('reference', { href: r.href, id: r.id, type: r.type, title: r.title });
    const coll = u.ele('pkglist').ele('collection', { short: o.collection });
    coll.ele('name').txt(o.collection);
    for (const p of [...packages].sort((x, y) => byCodeUnits(`${x.name}.${x.arch}`, `${y.name}.${y.arch}`))) {
      const pe = coll.ele('package', {
        name: p.name,
        epoch: String(p.epoch),
        version: p.version,
        release: p.release,
        arch: p.arch,
        src: p.src,
      });
      pe.ele('filename').txt(p.filename);
      if (p.sha256) pe.ele('sum', { type: 'sha256' }).txt(p.sha256);
      if (a.rebootSuggested) pe.ele('reboot_suggested').txt('True');
    }
  }
  return finishXml(`${root.end({ prettyPrint: true })}\n`);
}

/** An upstream advisory read from updateinfo.xml (or OSV), before it is matched to Lenix builds. */
export interface UpstreamAdvisory {
  readonly id: string;
  readonly type: AdvisoryType;
  readonly severity: Severity | null;
  readonly title: string;
  readonly description: string;
  readonly issued: number | null;
  readonly rebootSuggested: boolean;
  readonly references: readonly AdvisoryReference[];
  /** Fixed package versions: name and EVR (arch when known). */
  readonly packages: readonly Pick<AdvisoryPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>[];
}

type El = {
  getAttribute(n: string): string | null;
  getElementsByTagName(n: string): ArrayLike<El>;
  textContent: string | null;
};
const all = (e: El, name: string): El[] => Array.from(e.getElementsByTagName(name));
const text = (e: El, name: string): string => all(e, name)[0]?.textContent?.trim() ?? '';

function parseDate(s: string | null | undefined): number | null {
  if (!s) return null;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(`${s.trim().replace(' ', 'T')}${/Z|[+-]\d\d:?\d\d$/.test(s) ? '' : 'Z'}`);
  return Number.isNaN(t) ? null : t;
}

/** Read an upstream updateinfo.xml; every `<update>` becomes one upstream advisory. */
export function parseUpdateinfo(xml: string): UpstreamAdvisory[] {
  let root: El;
  try {
    root = create(xml).root().node as unknown as El;
  } catch (err) {
    throw new LenixError('ERRATA_INVALID', `not XML: ${(err as Error).message.slice(0, 200)}`);
  }
  const updates = all(root, 'update');
  if (updates.length === 0) throw new LenixError('ERRATA_INVALID', 'no <update> elements: not an updateinfo.xml');
  return updates.map((u) => {
    const t = u.getAttribute('type') ?? '';
    const type: AdvisoryType = t === 'security' || t === 'bugfix' || t === 'enhancement' ? t : 'enhancement';
    const sev = text(u, 'severity');
    const severity = (SEVERITIES as readonly string[]).includes(sev) ? (sev as Severity) : null;
    const references = all(u, 'reference').flatMap((r): AdvisoryReference[] => {
      const rt = r.getAttribute('type') ?? 'other';
      const id = r.getAttribute('id') ?? '';
      const href = r.getAttribute('href') ?? '';
      if (rt === 'cve' && !CVE_RE.test(id)) return [];
      if (!/^https?:\/\//.test(href)) return [];
      return [
        { type: rt === 'cve' || rt === 'bugzilla' ? rt : 'other', id, href, title: r.getAttribute('title') ?? id },
      ];
    });
    return {
      id: text(u, 'id'),
      type,
      severity,
      title: text(u, 'title'),
      description: text(u, 'description'),
      issued: parseDate(all(u, 'issued')[0]?.getAttribute('date')),
      rebootSuggested: all(u, 'reboot_suggested').some((r) => /^[Tt1]/.test(r.textContent ?? '')),
      references,
      packages: all(u, 'package').map((p) => ({
        name: p.getAttribute('name') ?? '',
        epoch: Number(p.getAttribute('epoch') ?? '0') || 0,
        version: p.getAttribute('version') ?? '',
        release: p.getAttribute('release') ?? '',
        arch: p.getAttribute('arch') ?? '',
      })),
    };
  });
}
