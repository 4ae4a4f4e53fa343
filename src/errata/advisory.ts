import { LenixError } from '../core/errors.js';
import { textProblem } from '../core/xml-text.js';

/**
 * The advisory model (pure): one record that updateinfo.xml, OVAL, OSV, the Atom feed and the API all
 * render. Ids are `<PREFIX><S|B|E>A-YYYY:NNNN` (prefix per repository, e.g. `AL` → ALSA/ALBA/ALEA).
 * Status moves draft → approved → released; a released advisory keeps its packages for ever (clients
 * match them by exact NEVRA), only its texts and references may be corrected (its version goes up).
 */
export const ADVISORY_TYPES = ['security', 'bugfix', 'enhancement'] as const;
export type AdvisoryType = (typeof ADVISORY_TYPES)[number];
export const SEVERITIES = ['Critical', 'Important', 'Moderate', 'Low'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const ADVISORY_STATUSES = ['draft', 'approved', 'released'] as const;
export type AdvisoryStatus = (typeof ADVISORY_STATUSES)[number];
export const REFERENCE_TYPES = ['cve', 'bugzilla', 'self', 'other'] as const;
export type ReferenceType = (typeof REFERENCE_TYPES)[number];

export interface AdvisoryReference {
  readonly type: ReferenceType;
  readonly id: string;
  readonly href: string;
  readonly title: string;
}

export interface AdvisoryPackage {
  readonly name: string;
  readonly epoch: number; // 0 when the package has none (updateinfo and OVAL write it explicitly)
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  readonly src: string; // source RPM file name
  readonly filename: string;
  readonly sha256: string | null;
}

export interface Advisory {
  readonly id: string;
  readonly repo: string;
  readonly type: AdvisoryType;
  readonly severity: Severity | null;
  readonly title: string;
  readonly synopsis: string;
  readonly description: string;
  readonly issued: number; // ms since epoch
  readonly updated: number;
  readonly version: number;
  readonly status: AdvisoryStatus;
  readonly rebootSuggested: boolean;
  readonly references: readonly AdvisoryReference[];
  readonly packages: readonly AdvisoryPackage[];
  readonly upstreamId: string | null;
}

export const CVE_RE = /^CVE-\d{4}-\d{4,19}$/;
const PREFIX_RE = /^[A-Z]{1,8}$/;
/** `<PREFIX><S|B|E>A-YYYY:NNNN`. */
export const ADVISORY_ID_RE = /^([A-Z]{1,8})([SBE])A-(\d{4}):(\d{4,})$/;
const LETTER: Record<AdvisoryType, string> = { security: 'S', bugfix: 'B', enhancement: 'E' };

export function advisoryId(prefix: string, type: AdvisoryType, year: number, n: number): string {
  if (!PREFIX_RE.test(prefix)) throw new LenixError('BAD_REQUEST', 'an errata prefix is 1 to 8 capital letters');
  return `${prefix}${LETTER[type]}A-${year}:${String(n).padStart(4, '0')}`;
}

export function parseAdvisoryId(id: string): { prefix: string; type: AdvisoryType; year: number; number: number } {
  const m = ADVISORY_ID_RE.exec(id);
  if (!m) throw new LenixError('BAD_REQUEST', `not an advisory id: ${id.slice(0, 40)}`);
  const type = Object.entries(LETTER).find(([, l]) => l === m[2])![0] as AdvisoryType;
  return { prefix: m[1]!, type, year: Number(m[3]), number: Number(m[4]) };
}

export function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) throw new LenixError('BAD_REQUEST', 'an errata prefix is 1 to 8 capital letters');
  return prefix;
}

/** A reference from what a user types: `CVE-2026-1234`, a bug URL, or `type:id:href`. */
export function parseReference(text: string): AdvisoryReference {
  const t = text.trim();
  if (/^cve-/i.test(t)) {
    if (!CVE_RE.test(t)) throw new LenixError('ERRATA_INVALID', `not a CVE id: ${t.slice(0, 60)} (CVE-YYYY-NNNN…)`);
    return { type: 'cve', id: t, href: `https://www.cve.org/CVERecord?id=${t}`, title: t };
  }
  if (/^https?:\/\//.test(t)) {
    let url: URL;
    try {
      url = new URL(t);
    } catch {
      throw new LenixError('ERRATA_INVALID', `not a URL: ${t.slice(0, 80)}`);
    }
    const id = url.searchParams.get('id') ?? url.pathname.split('/').filter(Boolean).pop() ?? url.host;
    return { type: 'bugzilla', id, href: url.toString(), title: `bug ${id}` };
  }
  throw new LenixError('ERRATA_INVALID', `a reference is a CVE id (CVE-YYYY-NNNN) or a bug URL: ${t.slice(0, 60)}`);
}

export interface AdvisoryDraft {
  readonly type: AdvisoryType;
  readonly severity: Severity | null;
  readonly title: string;
  readonly synopsis: string;
  readonly description: string;
  readonly rebootSuggested: boolean;
  readonly references: readonly AdvisoryReference[];
  readonly packages: readonly AdvisoryPackage[];
}

/** Check a draft's fields; the reason names the first thing wrong. */
export function validateDraft(d: AdvisoryDraft): void {
  const bad = (why: string): never => {
    throw new LenixError('ERRATA_INVALID', why);
  };
  if (!(ADVISORY_TYPES as readonly string[]).includes(d.type)) bad(`type must be one of ${ADVISORY_TYPES.join(', ')}`);
  if (d.type === 'security' && d.severity === null)
    bad('a security advisory needs a severity (Critical, Important, Moderate or Low)');
  if (d.severity !== null && !(SEVERITIES as readonly string[]).includes(d.severity))
    bad(`severity must be one of ${SEVERITIES.join(', ')} (capitalised, as dnf reads it)`);
  if (!d.title.trim() || d.title.length > 500) bad('a title of 1 to 500 characters');
  // Every field reaches XML (updateinfo, OVAL, the Atom feed): refuse what XML cannot carry, by name.
  for (const [field, text, multiline] of [
    ['title', d.title, false],
    ['synopsis', d.synopsis, false],
    ['description', d.description, true],
  ] as const) {
    const why = textProblem(text, { multiline });
    if (why) bad(`the ${field} ${why}`);
  }
  for (const r of d.references) {
    const why = textProblem(r.id) ?? textProblem(r.href) ?? textProblem(r.title);
    if (why) bad(`reference ${JSON.stringify(r.id.slice(0, 60))} ${why}`);
  }
  if (d.description.length > 100_000 || d.synopsis.length > 2000) bad('description or synopsis too long');
  for (const r of d.references) {
    if (r.type === 'cve' && !CVE_RE.test(r.id)) bad(`not a CVE id: ${r.id.slice(0, 60)}`);
    if (!/^https?:\/\//.test(r.href)) bad(`reference ${r.id.slice(0, 60)} needs an http(s) link`);
  }
  const seen = new Set<string>();
  for (const p of d.packages) {
    const k = `${p.name}-${p.epoch}:${p.version}-${p.release}.${p.arch}`;
    if (seen.has(k)) bad(`package ${k} is listed twice`);
    seen.add(k);
    if (
      [p.name, p.version, p.release, p.arch, p.src, p.filename].some((f) => textProblem(f) !== null) ||
      !/^[^\s/]+$/.test(p.name) ||
      !/^[^\s:-]+$/.test(p.version) ||
      !/^[^\s:-]+$/.test(p.release) ||
      !/^[A-Za-z0-9_]+$/.test(p.arch)
    )
      bad(`package ${k} is not a valid NEVRA`);
  }
}

/** The state machine: which status moves are allowed. */
export function checkTransition(from: AdvisoryStatus, to: AdvisoryStatus): void {
  const ok =
    (from === 'draft' && to === 'approved') ||
    (from === 'approved' && to === 'released') ||
    (from === 'approved' && to === 'draft');
  if (!ok) throw new LenixError('ERRATA_STATE', `an advisory that is ${from} cannot become ${to}`);
}

export const evrOf = (p: Pick<AdvisoryPackage, 'epoch' | 'version' | 'release'>) =>
  `${p.epoch}:${p.version}-${p.release}`;
export const nevraOf = (p: AdvisoryPackage) =>
  `${p.name}-${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
export const cves = (a: Pick<Advisory, 'references'>) => a.references.filter((r) => r.type === 'cve').map((r) => r.id);
