import { createHash } from 'node:crypto';
import * as CDX from '@cyclonedx/cyclonedx-library';
import { PackageURL } from 'packageurl-js';
import type { InstalledVerdict, Provenance } from './installed.js';
import { classifyLicense, uuidFromDigest } from './sbom.js';

/**
 * The SBOM of an installed system (`lenix sbom --installed`): every package its rpm database holds, with its purl,
 * and for packages proven from this Lenix's ledger their provenance (commit, build, signing key, releases, ledger
 * entries); other packages are marked as not from Lenix. Pure and deterministic: the same database gives the same
 * bytes (the document's time is the newest install time, its serial number a digest of the model).
 */
export interface SystemPackage {
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  readonly license: string | null;
  readonly summary: string | null;
  readonly url: string | null;
  readonly vendor: string | null;
  readonly headerSha256: string | null;
  readonly signatureKeyId: string | null;
  readonly installTime: number;
  readonly verdict: InstalledVerdict;
  readonly provenance: Provenance | null;
}

export interface SystemSbomInput {
  readonly toolVersion: string;
  readonly packages: readonly SystemPackage[];
}

/** EVR as rpm prints it for an installed package (an explicit epoch 0 kept). */
const evr = (p: SystemPackage) => `${p.epoch !== null ? `${p.epoch}:` : ''}${p.version}-${p.release}`;
const nevra = (p: SystemPackage) => `${p.name}-${evr(p)}.${p.arch}`;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** A ref from the header digest (unique per installed header), else from the NEVRA. */
const ref = (p: SystemPackage) => `rpm-${p.headerSha256 ?? sha256(nevra(p)).slice(0, 32)}`;
const fromLenix = (p: SystemPackage) => p.provenance !== null;

/** The purl namespace: the package's Vendor (lower case, plain), `lenix` for packages proven from this Lenix. */
function purl(p: SystemPackage): string {
  const vendor =
    p.vendor
      ?.toLowerCase()
      .replace(/[^a-z0-9.-]+/g, '-')
      .replace(/^-+|-+$/g, '') || null;
  const qualifiers: Record<string, string> = { arch: p.arch };
  if (p.epoch !== null) qualifiers['epoch'] = String(p.epoch);
  return new PackageURL(
    'rpm',
    fromLenix(p) ? 'lenix' : vendor,
    p.name,
    `${p.version}-${p.release}`,
    qualifiers,
  ).toString();
}

/** What the document says about a package beyond its name and version (CycloneDX properties, SPDX annotation). */
function facts(p: SystemPackage): [string, string][] {
  const out: [string, string][] = [
    ['lenix:origin', fromLenix(p) ? (p.provenance?.imported ? 'lenix-import' : 'lenix') : 'not from this Lenix'],
    ['lenix:verdict', p.verdict],
    ['lenix:arch', p.arch],
  ];
  if (p.headerSha256) out.push(['lenix:rpm-header-sha256', p.headerSha256]);
  if (p.signatureKeyId) out.push(['lenix:signature-key-id', p.signatureKeyId]);
  const v = p.provenance;
  if (v) {
    if (v.repository) out.push(['lenix:git-url', v.repository]);
    if (v.commit) out.push(['lenix:git-commit', v.commit]);
    if (v.buildId !== null) out.push(['lenix:build-id', String(v.buildId)]);
    if (v.key) out.push(['lenix:signing-key', v.key]);
    if (v.releases.length > 0) out.push(['lenix:releases', v.releases.join(',')]);
    out.push(['lenix:ledger-entries', v.ledgerEntries.join(',')]);
  }
  return out;
}

/** The packages in a fixed order, and the digest that names this set (the same database, the same identity). */
function ordered(input: SystemSbomInput): { packages: SystemPackage[]; identity: string; timestamp: Date } {
  const packages = [...input.packages]
    .map((p) => ({
      ...p,
      // The checkpoint a proof was checked against moves on as the log grows: not part of what the document says.
      provenance: p.provenance ? { ...p.provenance, checkpoint: '', treeSize: 0 } : null,
    }))
    .sort((a, b) => (ref(a) < ref(b) ? -1 : ref(a) > ref(b) ? 1 : 0));
  const identity = sha256(JSON.stringify(packages));
  const newest = Math.max(0, ...packages.map((p) => p.installTime));
  return { packages, identity, timestamp: new Date(newest * 1000) };
}

const uuidOf = (hex: string) => uuidFromDigest(Buffer.from(hex, 'hex'));

export function installedCyclonedxJson(input: SystemSbomInput): string {
  const { packages, identity, timestamp } = ordered(input);
  const bom = new CDX.Models.Bom();
  bom.serialNumber = `urn:uuid:${uuidOf(sha256(`cyclonedx-json\n${identity}`))}`;
  bom.metadata.timestamp = timestamp;
  bom.metadata.tools.components.add(
    new CDX.Models.Component(CDX.Enums.ComponentType.Application, 'lenix', {
      version: input.toolVersion,
      bomRef: 'tool-lenix',
    }),
  );
  const system = new CDX.Models.Component(CDX.Enums.ComponentType.OperatingSystem, 'installed system', {
    version: identity.slice(0, 16),
    bomRef: 'lenix-system',
  });
  system.properties.add(new CDX.Models.Property('lenix:identity', `rpmdb:${identity}`));
  bom.metadata.component = system;
  for (const p of packages) {
    const c = new CDX.Models.Component(CDX.Enums.ComponentType.Library, p.name, { version: evr(p), bomRef: ref(p) });
    c.purl = purl(p);
    if (p.summary) c.description = p.summary;
    if (p.vendor) c.supplier = new CDX.Models.OrganizationalEntity({ name: p.vendor });
    // The file Lenix signed, when proven: its digest names the same bytes the ledger does.
    if (p.provenance) c.hashes.set(CDX.Enums.HashAlgorithm['SHA-256'], p.provenance.sha256);
    const lic = classifyLicense(p.license);
    if (lic.kind === 'expression') c.licenses.add(new CDX.Models.LicenseExpression(lic.expression));
    if (lic.kind === 'named') c.licenses.add(new CDX.Models.NamedLicense(lic.name));
    if (p.provenance?.repository && /^[a-z+]+:\/\//i.test(p.provenance.repository))
      c.externalReferences.add(
        new CDX.Models.ExternalReference(p.provenance.repository, CDX.Enums.ExternalReferenceType.VCS, {
          comment: `commit ${p.provenance.commit}`,
        }),
      );
    if (p.url && /^[a-z]+:\/\//i.test(p.url))
      c.externalReferences.add(new CDX.Models.ExternalReference(p.url, CDX.Enums.ExternalReferenceType.Website));
    for (const [k, v] of facts(p)) c.properties.add(new CDX.Models.Property(k, v));
    bom.components.add(c);
    system.dependencies.add(c.bomRef);
  }
  const serializer = new CDX.Serialize.JsonSerializer(new CDX.Serialize.JSON.Normalize.Factory(CDX.Spec.Spec1dot6));
  return `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
}

export function installedSpdxJson(input: SystemSbomInput): string {
  const { packages, identity, timestamp } = ordered(input);
  const created = `${timestamp.toISOString().slice(0, 19)}Z`;
  const tool = `Tool: lenix-${input.toolVersion}`;
  const id = (r: string) => `SPDXRef-${r.replace(/[^A-Za-z0-9.-]/g, '-')}`;
  const extracted = new Map<string, string>();
  const rel = (a: string, type: string, b: string) => ({
    spdxElementId: a,
    relationshipType: type,
    relatedSpdxElement: b,
  });
  const system = 'SPDXRef-System';
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `installed system ${identity.slice(0, 16)}`,
    documentNamespace: `https://spdx.lenix.dev/installed/${identity}/${uuidOf(sha256(`spdx-json\n${identity}`))}`,
    creationInfo: { created, creators: [tool] },
    packages: [
      {
        SPDXID: system,
        name: 'installed system',
        versionInfo: identity.slice(0, 16),
        supplier: 'NOASSERTION',
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        primaryPackagePurpose: 'OPERATING_SYSTEM',
        annotations: [
          {
            annotationDate: created,
            annotationType: 'OTHER',
            annotator: tool,
            comment: `lenix:identity=rpmdb:${identity}`,
          },
        ],
      },
      ...packages.map((p) => {
        const lic = classifyLicense(p.license);
        let declared = 'NOASSERTION';
        if (lic.kind === 'expression') declared = lic.expression;
        if (lic.kind === 'named') {
          declared = `LicenseRef-${sha256(lic.name).slice(0, 16)}`;
          extracted.set(declared, lic.name);
        }
        return {
          SPDXID: id(ref(p)),
          name: p.name,
          versionInfo: evr(p),
          supplier: p.vendor ? `Organization: ${p.vendor}` : 'NOASSERTION',
          downloadLocation: 'NOASSERTION',
          filesAnalyzed: false,
          ...(p.provenance ? { checksums: [{ algorithm: 'SHA256', checksumValue: p.provenance.sha256 }] } : {}),
          ...(p.url && /^[a-z]+:\/\//i.test(p.url) ? { homepage: p.url } : {}),
          sourceInfo: p.provenance
            ? p.provenance.imported
              ? 'imported into Lenix; proven from its ledger'
              : `built by Lenix build ${p.provenance.buildId} from ${p.provenance.repository} commit ${p.provenance.commit}; proven from its ledger`
            : `not from this Lenix (${p.verdict})`,
          licenseConcluded: 'NOASSERTION',
          licenseDeclared: declared,
          copyrightText: 'NOASSERTION',
          ...(p.summary ? { summary: p.summary } : {}),
          primaryPackagePurpose: 'INSTALL',
          externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(p) }],
          annotations: [
            {
              annotationDate: created,
              annotationType: 'OTHER',
              annotator: tool,
              comment: facts(p)
                .map(([k, v]) => `${k}=${v}`)
                .join('\n'),
            },
          ],
        };
      }),
    ],
    ...(extracted.size > 0
      ? {
          hasExtractedLicensingInfos: [...extracted]
            .sort()
            .map(([licenseId, text]) => ({ licenseId, extractedText: text, name: text })),
        }
      : {}),
    relationships: [
      rel('SPDXRef-DOCUMENT', 'DESCRIBES', system),
      ...packages.map((p) => rel(system, 'CONTAINS', id(ref(p)))),
    ],
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
