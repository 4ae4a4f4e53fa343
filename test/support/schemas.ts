import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as CDX from '@cyclonedx/cyclonedx-library';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { XmlDocument, XsdValidator } from 'libxml2-wasm';
import { xmlRegisterFsInputProviders } from 'libxml2-wasm/lib/nodejs.mjs';
import { fileURLToPath } from 'node:url';

/**
 * The official validators the tests use: CycloneDX 1.6 JSON (the library's strict validator over the
 * schema it ships), CycloneDX 1.6 XML against the shipped XSD (libxml2 compiled to WebAssembly), SPDX 2.3 JSON
 * against the official schema (test/fixtures/schemas), and SPDX tag-value read back independently into the
 * JSON form and validated against that schema too.
 */
const require = createRequire(import.meta.url);
const CDX_SCHEMAS = path.join(
  path.dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json')),
  'res',
  'schema',
);
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/schemas/', import.meta.url));

export async function cyclonedxJsonErrors(text: string): Promise<unknown> {
  return new CDX.Validation.JsonStrictValidator(CDX.Spec.Version.v1dot6).validate(text);
}

let xsd: XsdValidator | null = null;
export function cyclonedxXmlErrors(text: string): string | null {
  if (!xsd) {
    xmlRegisterFsInputProviders();
    const file = path.join(CDX_SCHEMAS, 'bom-1.6.SNAPSHOT.xsd');
    xsd = XsdValidator.fromDoc(XmlDocument.fromBuffer(readFileSync(file), { url: file }));
  }
  const doc = XmlDocument.fromString(text);
  try {
    xsd.validate(doc);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    doc.dispose();
  }
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => void;
let spdx: ReturnType<Ajv['compile']> | null = null;
export function spdxJsonErrors(doc: unknown): unknown {
  if (!spdx) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    spdx = ajv.compile(JSON.parse(readFileSync(path.join(FIXTURES, 'spdx-2.3.schema.json'), 'utf8')) as object);
  }
  return spdx(doc) ? null : spdx.errors;
}

/** Appends to the list at key, creating it when missing. */
function append(o: Record<string, any>, key: string, value: unknown): void {
  o[key] ??= [];
  o[key].push(value);
}

/** Read SPDX tag-value (the subset Lenix writes: document, packages, extracted licenses, relationships). */
export function parseSpdxTagValue(text: string): Record<string, any> {
  const pairs: [string, string][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([A-Za-z]+): (.*)$/.exec(lines[i]!);
    if (!m) continue;
    let value = m[2]!;
    if (value.startsWith('<text>')) {
      while (!value.includes('</text>')) value += `\n${lines[++i]}`;
      value = value.slice('<text>'.length, value.indexOf('</text>')).replace(/^\n|\n$/g, '');
    }
    pairs.push([m[1]!, value]);
  }
  const doc: Record<string, any> = { packages: [], relationships: [], creationInfo: { creators: [] } };
  let pkg: Record<string, any> | null = null;
  let lic: Record<string, any> | null = null;
  let ann: Record<string, any> | null = null;
  for (const [tag, v] of pairs) {
    switch (tag) {
      case 'SPDXVersion':
        doc['spdxVersion'] = v;
        break;
      case 'DataLicense':
        doc['dataLicense'] = v;
        break;
      case 'DocumentName':
        doc['name'] = v;
        break;
      case 'DocumentNamespace':
        doc['documentNamespace'] = v;
        break;
      case 'Creator':
        doc['creationInfo'].creators.push(v);
        break;
      case 'Created':
        doc['creationInfo'].created = v;
        break;
      case 'SPDXID':
        if (pkg) pkg['SPDXID'] = v;
        else doc['SPDXID'] = v;
        break;
      case 'PackageName':
        pkg = { name: v };
        lic = null;
        doc['packages'].push(pkg);
        break;
      case 'PackageVersion':
        pkg!['versionInfo'] = v;
        break;
      case 'PackageFileName':
        pkg!['packageFileName'] = v;
        break;
      case 'PackageSupplier':
        pkg!['supplier'] = v;
        break;
      case 'PackageDownloadLocation':
        pkg!['downloadLocation'] = v;
        break;
      case 'FilesAnalyzed':
        pkg!['filesAnalyzed'] = v === 'true';
        break;
      case 'PackageChecksum':
        append(pkg!, 'checksums', { algorithm: v.split(': ')[0], checksumValue: v.split(': ')[1] });
        break;
      case 'PackageHomePage':
        pkg!['homepage'] = v;
        break;
      case 'PackageSourceInfo':
        pkg!['sourceInfo'] = v;
        break;
      case 'PackageLicenseConcluded':
        pkg!['licenseConcluded'] = v;
        break;
      case 'PackageLicenseDeclared':
        pkg!['licenseDeclared'] = v;
        break;
      case 'PackageCopyrightText':
        pkg!['copyrightText'] = v;
        break;
      case 'PackageSummary':
        pkg!['summary'] = v;
        break;
      case 'PrimaryPackagePurpose':
        pkg!['primaryPackagePurpose'] = v;
        break;
      case 'BuiltDate':
        pkg!['builtDate'] = v;
        break;
      case 'ExternalRef': {
        const [referenceCategory, referenceType, referenceLocator] = v.split(' ');
        append(pkg!, 'externalRefs', { referenceCategory, referenceType, referenceLocator });
        break;
      }
      case 'Annotator':
        ann = { annotator: v };
        append(pkg!, 'annotations', ann);
        break;
      case 'AnnotationDate':
        ann!['annotationDate'] = v;
        break;
      case 'AnnotationType':
        ann!['annotationType'] = v;
        break;
      case 'AnnotationComment':
        ann!['comment'] = v;
        break;
      case 'SPDXREF':
        break;
      case 'LicenseID':
        pkg = null;
        lic = { licenseId: v };
        append(doc, 'hasExtractedLicensingInfos', lic);
        break;
      case 'ExtractedText':
        lic!['extractedText'] = v;
        break;
      case 'LicenseName':
        lic!['name'] = v;
        break;
      case 'Relationship': {
        const [spdxElementId, relationshipType, relatedSpdxElement] = v.split(' ');
        doc['relationships'].push({ spdxElementId, relationshipType, relatedSpdxElement });
        break;
      }
      default:
        throw new Error(`unexpected tag ${tag}`);
    }
  }
  return doc;
}

let osv: ReturnType<Ajv['compile']> | null = null;
/** OSV records against the official schema (draft 2020-12). */
export function osvErrors(record: unknown): unknown {
  if (!osv) {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats(ajv as unknown as Ajv);
    osv = ajv.compile(JSON.parse(readFileSync(path.join(FIXTURES, 'osv.schema.json'), 'utf8')) as object);
  }
  return osv(record) ? null : osv.errors;
}
