import { z } from 'zod';
import { byCodeUnits } from '../core/ids.js';
import { LenixError } from '../core/errors.js';
import { cves, evrOf, type Advisory, type AdvisoryReference, type AdvisoryType, SEVERITIES } from './advisory.js';
import type { UpstreamAdvisory } from './updateinfo.js';

/**
 * OSV (https://ossf.github.io/osv-schema/, schema 1.7.x) records, one per released advisory, and reading
 * upstream OSV records for import. The schema admits only registered id prefixes (or `x_`) and registered
 * ecosystems; both lists below are data from the OSV schema (ossf/osv-schema validation/schema.json,
 * Apache-2.0), so a record Lenix writes always validates: an advisory id with an unregistered prefix is
 * written as `x_<id>`, and a repository without a registered ecosystem gets no OSV records at all.
 */
export const OSV_SCHEMA_VERSION = '1.7.5';
const REGISTERED_PREFIX =
  /^(x_|(ASB-A|PUB-A|ALPINE|ALSA|ALBA|ALEA|AZL|BELL|BIT|CGA|CLEANSTART|CLSA|CURL|CVE|DEBIAN|DHI|DRUPAL|DSA|DLA|ELA|DTSA|ECHO|EEF|FreeBSD|GHSA|GO|GSD|HSEC|JLSEC|KUBE|LBSEC|LSN|MAL|MINI|MGASA|OESA|OSEC|OSV|openSUSE-SU|PHSA|PSF|PYSEC|RHBA|RHEA|RHSA|RLSA|RXSA|RSEC|ROOT|RUSTSEC|SUSE-[SRFO]U|UBUNTU|USN|V8)-)/;
export const OSV_ECOSYSTEMS: readonly string[] = [
  'AlmaLinux',
  'Alpaquita',
  'Alpine',
  'Android',
  'Azure Linux',
  'BellSoft Hardened Containers',
  'Bioconductor',
  'Bitnami',
  'Chainguard',
  'CleanStart',
  'ConanCenter',
  'CRAN',
  'crates.io',
  'Debian',
  'Docker Hardened Images',
  'Echo',
  'FreeBSD',
  'GHC',
  'GitHub Actions',
  'Go',
  'Hackage',
  'Hex',
  'Julia',
  'Kubernetes',
  'Linux',
  'Mageia',
  'Maven',
  'MinimOS',
  'npm',
  'NuGet',
  'opam',
  'openEuler',
  'openSUSE',
  'OSS-Fuzz',
  'Packagist',
  'Photon OS',
  'Pub',
  'PyPI',
  'Red Hat',
  'Rocky Linux',
  'Root',
  'RubyGems',
  'SUSE',
  'SwiftURL',
  'TuxCare',
  'Ubuntu',
  'VSCode',
  'Wolfi',
];

export function osvId(advisoryId: string): string {
  return REGISTERED_PREFIX.test(advisoryId) ? advisoryId : `x_${advisoryId}`;
}

/** `Name` or `Name:suffix` where Name is registered; anything else is refused. */
export function checkEcosystem(ecosystem: string): string {
  const i = ecosystem.indexOf(':');
  const name = i < 0 ? ecosystem : ecosystem.slice(0, i);
  if (!OSV_ECOSYSTEMS.includes(name) || (i >= 0 && ecosystem.length === i + 1)) {
    throw new LenixError(
      'BAD_REQUEST',
      `${ecosystem.slice(0, 60)} is not a registered OSV ecosystem (e.g. AlmaLinux:9, Rocky Linux:9, Red Hat); OSV records need one`,
    );
  }
  return ecosystem;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const refType = (r: AdvisoryReference) =>
  r.type === 'self' ? 'ADVISORY' : r.type === 'cve' || r.type === 'bugzilla' ? 'REPORT' : 'WEB';

export function renderOsv(a: Advisory, ecosystem: string, selfUrl: string | null): string {
  const fixed = new Map<string, string>();
  for (const p of a.packages)
    if (!fixed.has(p.name)) fixed.set(p.name, `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`);
  const record = {
    schema_version: OSV_SCHEMA_VERSION,
    id: osvId(a.id),
    modified: iso(a.updated),
    published: iso(a.issued),
    upstream: cves(a),
    summary: a.title,
    details: a.description,
    affected: [...fixed]
      .sort(([x], [y]) => byCodeUnits(x, y))
      .map(([name, version]) => ({
        package: { ecosystem, name },
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: version }] }],
      })),
    references: [
      ...(selfUrl ? [{ type: 'ADVISORY', url: selfUrl }] : []),
      ...a.references.map((r) => ({ type: refType(r), url: r.href })),
    ],
    database_specific: {
      advisory: a.id,
      type: a.type,
      severity: a.severity,
      version: a.version,
      packages: a.packages.map((p) => `${p.name}-${evrOf(p)}.${p.arch}`),
    },
  };
  return `${JSON.stringify(record, null, 2)}\n`;
}

/**
 * The part of an upstream OSV record that import reads, parsed through zod: other fields pass through
 * unread, and a field of the wrong type makes the record invalid instead of reaching the code untyped.
 */
const OsvEvent = z.looseObject({ fixed: z.string().optional() });
const OsvRecord = z.looseObject({
  id: z.string().min(1),
  summary: z.string().optional(),
  details: z.string().optional(),
  published: z.string().optional(),
  upstream: z.array(z.unknown()).optional(),
  aliases: z.array(z.unknown()).optional(),
  related: z.array(z.unknown()).optional(),
  database_specific: z.looseObject({ severity: z.unknown().optional() }).optional(),
  affected: z.array(
    z.looseObject({
      package: z.looseObject({ name: z.string().optional() }).optional(),
      ranges: z.array(z.looseObject({ events: z.array(OsvEvent).optional() })).optional(),
    }),
  ),
  references: z.array(z.looseObject({ url: z.unknown().optional(), type: z.unknown().optional() })).optional(),
});
type OsvRecord = z.infer<typeof OsvRecord>;

/** Read one upstream OSV record (an RPM ecosystem's) as an upstream advisory. */
export function parseOsv(json: string): UpstreamAdvisory {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new LenixError('ERRATA_INVALID', 'not JSON');
  }
  const parsed = OsvRecord.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new LenixError(
      'ERRATA_INVALID',
      `not an OSV record (id and affected are required)${where}: ${issue?.message}`,
    );
  }
  const r = parsed.data;
  const id = r.id;
  const letter = /^[A-Z]+([SBE])A-/.exec(id)?.[1];
  const type: AdvisoryType =
    letter === 'S'
      ? 'security'
      : letter === 'B'
        ? 'bugfix'
        : letter === 'E'
          ? 'enhancement'
          : cvesIn(r).length > 0
            ? 'security'
            : 'bugfix';
  const sev = r.database_specific?.severity;
  const severity = SEVERITIES.find((s) => s === sev) ?? null;
  const packages = r.affected.flatMap((af) =>
    (af.ranges ?? []).flatMap((rg) =>
      (rg.events ?? []).flatMap((e) => {
        if (e.fixed === undefined) return [];
        const m = /^(?:(\d+):)?([^-:]+)-([^-:]+)$/.exec(e.fixed);
        if (!m)
          throw new LenixError(
            'ERRATA_INVALID',
            `fixed version ${e.fixed.slice(0, 60)} is not [epoch:]version-release`,
          );
        return [{ name: af.package?.name ?? '', epoch: Number(m[1] ?? 0), version: m[2]!, release: m[3]!, arch: '' }];
      }),
    ),
  );
  const refs: AdvisoryReference[] = [
    ...cvesIn(r).map(
      (c): AdvisoryReference => ({ type: 'cve', id: c, href: `https://www.cve.org/CVERecord?id=${c}`, title: c }),
    ),
    ...(r.references ?? []).flatMap((x): AdvisoryReference[] =>
      typeof x.url === 'string' && /^https?:\/\//.test(x.url)
        ? [{ type: 'other', id: x.url, href: x.url, title: String(x.type ?? 'WEB') }]
        : [],
    ),
  ];
  return {
    id,
    type,
    severity,
    title: r.summary ?? id,
    description: r.details ?? '',
    issued: r.published !== undefined ? Date.parse(r.published) : null,
    rebootSuggested: false,
    references: refs,
    packages,
  };
}

function cvesIn(r: OsvRecord): string[] {
  const ids = [...(r.upstream ?? []), ...(r.aliases ?? []), ...(r.related ?? [])].filter(
    (x): x is string => typeof x === 'string' && /^CVE-\d{4}-\d{4,}$/.test(x),
  );
  return [...new Set(ids)];
}
