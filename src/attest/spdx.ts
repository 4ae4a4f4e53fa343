import { sha256 } from '../ledger/merkle.js';
import {
  buildrootPurl,
  buildrootRef,
  classifyLicense,
  evr,
  packageFacts,
  packageRef,
  resolveRequires,
  rpmPurl,
  sourceOf,
  stableUuid,
  type SbomInput,
  type SbomPackage,
} from './sbom.js';

/**
 * SPDX 2.3 (JSON and tag-value) from the SBOM model, written to the specification (no SPDX library for
 * Node is fit for production). Packages carry SHA-256, purl, declared license (an SPDX expression, or a
 * LicenseRef with the RPM tag kept as extracted text), supplier, build date; Lenix facts (signing key, build
 * node, ledger entries) are annotations. Relationships: DESCRIBES, CONTAINS (build/snapshot → package),
 * GENERATED_FROM (binary → source RPM), DEPENDS_ON (resolved Requires), BUILD_DEPENDENCY_OF / BUILD_TOOL_OF
 * (buildroot → binary package).
 */
interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo: string;
  packageFileName?: string;
  supplier: string;
  downloadLocation: string;
  filesAnalyzed: false;
  checksums?: { algorithm: 'SHA256'; checksumValue: string }[];
  homepage?: string;
  sourceInfo?: string;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  summary?: string;
  builtDate?: string;
  primaryPackagePurpose?: string;
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
  annotations?: { annotationDate: string; annotationType: 'OTHER'; annotator: string; comment: string }[];
}

interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: SpdxPackage[];
  hasExtractedLicensingInfos?: { licenseId: string; extractedText: string; name: string }[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

const spdxId = (ref: string) => `SPDXRef-${ref.replace(/[^A-Za-z0-9.-]/g, '-')}`;
const seconds = (iso: string) => `${iso.slice(0, 19)}Z`;
const licenseRef = (name: string) =>
  `LicenseRef-${Buffer.from(sha256(new TextEncoder().encode(name)))
    .toString('hex')
    .slice(0, 16)}`;
const SUBJECT = 'SPDXRef-Subject';

function document(input: SbomInput, format: string): SpdxDocument {
  const created = seconds(input.timestamp);
  const extracted = new Map<string, string>();
  const tool = `Tool: lenix-${input.toolVersion}`;
  const pkg = (p: SbomPackage): SpdxPackage => {
    const lic = classifyLicense(p.license);
    let declared = 'NOASSERTION';
    if (lic.kind === 'expression') declared = lic.expression;
    if (lic.kind === 'named') {
      declared = licenseRef(lic.name);
      extracted.set(declared, lic.name);
    }
    return {
      SPDXID: spdxId(packageRef(p)),
      name: p.name,
      versionInfo: evr(p),
      packageFileName: p.fileName,
      supplier: `Organization: ${input.supplier}`,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: p.sha256 }],
      ...(p.url && /^[a-z]+:\/\//i.test(p.url) ? { homepage: p.url } : {}),
      sourceInfo: p.imported
        ? `imported into Lenix (import ${p.imported.importId} by ${p.imported.by}), ${p.imported.key ? `signature verified against ${p.imported.key}` : 'unsigned'}`
        : `built by Lenix build ${p.buildId} from ${p.gitUrl} commit ${p.commit}`,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: declared,
      copyrightText: 'NOASSERTION',
      ...(p.summary ? { summary: p.summary } : {}),
      ...(p.buildTime ? { builtDate: seconds(p.buildTime) } : {}),
      primaryPackagePurpose: p.arch === 'src' ? 'SOURCE' : 'INSTALL',
      externalRefs: [
        {
          referenceCategory: 'PACKAGE-MANAGER',
          referenceType: 'purl',
          referenceLocator: rpmPurl(p, input.vendor, input.distro),
        },
      ],
      annotations: [
        {
          annotationDate: created,
          annotationType: 'OTHER',
          annotator: tool,
          comment: packageFacts(p)
            .map(([k, v]) => `${k}=${v}`)
            .join('\n'),
        },
      ],
    };
  };
  const subject: SpdxPackage = {
    SPDXID: SUBJECT,
    name: input.title,
    versionInfo: input.version,
    supplier: `Organization: ${input.supplier}`,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: input.kind === 'snapshot' ? 'OPERATING_SYSTEM' : 'APPLICATION',
    annotations: [
      {
        annotationDate: created,
        annotationType: 'OTHER',
        annotator: tool,
        comment: `lenix:identity=${input.identity}`,
      },
    ],
  };
  const packages = input.packages.map(pkg);
  const buildroot = input.buildroot.map(
    (b): SpdxPackage => ({
      SPDXID: spdxId(buildrootRef(b)),
      name: b.name,
      versionInfo: b.version,
      supplier: 'NOASSERTION',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: b.manager === 'tool' ? 'APPLICATION' : 'LIBRARY',
      ...(buildrootPurl(b)
        ? {
            externalRefs: [
              { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: buildrootPurl(b)! },
            ],
          }
        : {}),
      ...(b.sha256 ? { checksums: [{ algorithm: 'SHA256', checksumValue: b.sha256 }] } : {}),
      annotations: [
        {
          annotationDate: created,
          annotationType: 'OTHER',
          annotator: tool,
          comment: `lenix:buildroot=${b.manager}${b.origin ? ` origin=${b.origin}` : ''}`,
        },
      ],
    }),
  );
  const rel = (a: string, type: string, b: string) => ({
    spdxElementId: a,
    relationshipType: type,
    relatedSpdxElement: b,
  });
  const relationships = [rel('SPDXRef-DOCUMENT', 'DESCRIBES', SUBJECT)];
  for (const p of input.packages) relationships.push(rel(SUBJECT, 'CONTAINS', spdxId(packageRef(p))));
  for (const p of input.packages) {
    const src = sourceOf(p, input.packages);
    if (src) relationships.push(rel(spdxId(packageRef(p)), 'GENERATED_FROM', spdxId(packageRef(src))));
  }
  for (const [ref, deps] of resolveRequires(input.packages))
    for (const d of deps) relationships.push(rel(spdxId(ref), 'DEPENDS_ON', spdxId(d)));
  for (const b of input.buildroot) {
    for (const p of input.packages)
      if (p.arch !== 'src')
        relationships.push(
          rel(
            spdxId(buildrootRef(b)),
            b.manager === 'tool' ? 'BUILD_TOOL_OF' : 'BUILD_DEPENDENCY_OF',
            spdxId(packageRef(p)),
          ),
        );
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${input.title} ${input.version}`,
    documentNamespace: `https://spdx.lenix.dev/${input.identity.replace(/[^A-Za-z0-9.-]/g, '-')}/${stableUuid(input, format)}`,
    creationInfo: { created, creators: [tool, `Organization: ${input.supplier}`] },
    packages: [subject, ...packages, ...buildroot],
    ...(extracted.size > 0
      ? {
          hasExtractedLicensingInfos: [...extracted]
            .sort()
            .map(([licenseId, text]) => ({ licenseId, extractedText: text, name: text })),
        }
      : {}),
    relationships,
  };
}

export function spdxJson(input: SbomInput): string {
  return `${JSON.stringify(document(input, 'spdx-json'), null, 2)}\n`;
}

/** Tag-value: one `Tag: value` per line; multi-line values in <text>…</text>. */
export function spdxTagValue(input: SbomInput): string {
  const d = document(input, 'spdx-tag-value');
  const out: string[] = [];
  const tag = (t: string, v: string | undefined) => {
    if (v === undefined) return;
    out.push(`${t}: ${/[\n]/.test(v) || /^\s|\s$/.test(v) ? `<text>${v}</text>` : v}`);
  };
  tag('SPDXVersion', d.spdxVersion);
  tag('DataLicense', d.dataLicense);
  tag('SPDXID', d.SPDXID);
  tag('DocumentName', d.name);
  tag('DocumentNamespace', d.documentNamespace);
  for (const c of d.creationInfo.creators) tag('Creator', c);
  tag('Created', d.creationInfo.created);
  for (const p of d.packages) {
    out.push('');
    tag('PackageName', p.name);
    tag('SPDXID', p.SPDXID);
    tag('PackageVersion', p.versionInfo);
    tag('PackageFileName', p.packageFileName);
    tag('PackageSupplier', p.supplier);
    tag('PackageDownloadLocation', p.downloadLocation);
    tag('FilesAnalyzed', 'false');
    for (const c of p.checksums ?? []) tag('PackageChecksum', `${c.algorithm}: ${c.checksumValue}`);
    tag('PackageHomePage', p.homepage);
    tag('PackageSourceInfo', p.sourceInfo);
    tag('PackageLicenseConcluded', p.licenseConcluded);
    tag('PackageLicenseDeclared', p.licenseDeclared);
    tag('PackageCopyrightText', p.copyrightText);
    tag('PackageSummary', p.summary);
    tag('PrimaryPackagePurpose', p.primaryPackagePurpose);
    tag('BuiltDate', p.builtDate);
    for (const r of p.externalRefs ?? [])
      tag('ExternalRef', `${r.referenceCategory} ${r.referenceType} ${r.referenceLocator}`);
    for (const a of p.annotations ?? []) {
      tag('Annotator', a.annotator);
      tag('AnnotationDate', a.annotationDate);
      tag('AnnotationType', a.annotationType);
      tag('SPDXREF', p.SPDXID);
      tag('AnnotationComment', `\n${a.comment}\n`);
    }
  }
  for (const l of d.hasExtractedLicensingInfos ?? []) {
    out.push('');
    tag('LicenseID', l.licenseId);
    tag('ExtractedText', `\n${l.extractedText}\n`);
    tag('LicenseName', l.name);
  }
  out.push('');
  for (const r of d.relationships)
    tag('Relationship', `${r.spdxElementId} ${r.relationshipType} ${r.relatedSpdxElement}`);
  return `${out.join('\n')}\n`;
}
