import { createHash } from 'node:crypto';
import { PackageURL } from 'packageurl-js';
import parseSpdx from 'spdx-expression-parse';
import { LenixError } from '../core/errors.js';
import { sha256 } from '../ledger/merkle.js';

/**
 * The SBOM model: what Lenix knows about a package, a build or a repository snapshot, gathered by the server
 * from its records (builds, artifacts, buildroots, signatures, ledger) and the RPM headers. Pure; the
 * renderers (cyclonedx.ts, spdx.ts) turn one model into CycloneDX 1.6 JSON/XML and SPDX 2.3 JSON/tag-value.
 * Same model, same bytes: nothing here reads a clock or a random source.
 */
import { SBOM_FORMATS, type SbomFormat } from '../core/sbom-formats.js';
export { SBOM_FORMATS, type SbomFormat };

export const SBOM_MEDIA_TYPES: Readonly<Record<SbomFormat, string>> = {
  'cyclonedx-json': 'application/vnd.cyclonedx+json; version=1.6',
  'cyclonedx-xml': 'application/vnd.cyclonedx+xml; version=1.6',
  'spdx-json': 'application/spdx+json',
  'spdx-tag-value': 'text/spdx; charset=utf-8',
};

export interface SbomPackage {
  readonly fileName: string;
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  readonly arch: string; // 'src' for source packages
  readonly sha256: string;
  readonly size: number;
  readonly license: string | null;
  readonly summary: string | null;
  readonly url: string | null;
  readonly sourceRpm: string | null;
  readonly requires: readonly string[];
  readonly provides: readonly string[];
  readonly signingKey: string | null;
  readonly buildId: number;
  readonly buildNode: string | null;
  readonly buildTime: string | null; // ISO 8601
  readonly gitUrl: string;
  readonly commit: string;
  /** Ledger entries of the statements naming this file (source, build, sign, test, release). */
  readonly ledgerEntries: readonly number[];
  /** A package imported rather than built (buildId 0): the import, and the key its signature verified against. */
  readonly imported?: { readonly importId: number; readonly key: string | null; readonly by: string };
}

/** A buildroot entry: a tool or package present when the build ran. */
export interface BuildrootItem {
  readonly name: string;
  readonly version: string;
  readonly manager: 'rpm' | 'dpkg' | 'tool';
  /** Packages installed in a target's buildroot: their arch, file digest and origin (`REPO@SNAPSHOT`, or `host`). */
  readonly arch?: string;
  readonly sha256?: string;
  readonly origin?: string;
}

/** One pipeline step of a build (CycloneDX formulation task). */
export interface SbomStep {
  readonly uid: string; // task:ID
  readonly name: string; // srpm, build x86_64, sign, test
  readonly type: 'build' | 'test' | 'other' | 'clone' | 'release';
  readonly buildId: number;
  readonly node: string | null;
  readonly state: string;
  readonly start: string | null;
  readonly end: string | null;
  readonly after: readonly string[]; // uids of the steps it followed
  readonly outputs: readonly string[]; // sha256 of the files it produced
}

export interface SbomInput {
  readonly kind: 'package' | 'build' | 'snapshot';
  /** Stable identity of what is described: `sha256:…`, `build:12`, `snapshot:lenix:4`. */
  readonly identity: string;
  readonly title: string;
  readonly version: string;
  /** Deterministic time of the document: the build's end, the snapshot's publish time, the file's build. */
  readonly timestamp: string;
  readonly supplier: string;
  readonly vendor: string; // purl namespace
  readonly distro: string; // purl distro qualifier
  readonly toolVersion: string;
  readonly packages: readonly SbomPackage[];
  readonly buildroot: readonly BuildrootItem[];
  readonly steps: readonly SbomStep[];
}

export type SbomLicense =
  | { readonly kind: 'expression'; readonly expression: string }
  | { readonly kind: 'named'; readonly name: string }
  | { readonly kind: 'none' };

/** The License tag as an SPDX expression when it parses as one, else kept verbatim as a named license. */
export function classifyLicense(tag: string | null): SbomLicense {
  const text = tag?.trim() ?? '';
  if (!text) return { kind: 'none' };
  try {
    parseSpdx(text);
    return { kind: 'expression', expression: text };
  } catch {
    return { kind: 'named', name: text };
  }
}

export const evr = (p: Pick<SbomPackage, 'epoch' | 'version' | 'release'>) =>
  `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}`;

/** `pkg:rpm/<vendor>/<name>@<version>-<release>?arch=…&epoch=…&distro=…` (canonical: qualifiers sorted). */
export function rpmPurl(
  p: Pick<SbomPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>,
  vendor: string,
  distro: string,
): string {
  const qualifiers: Record<string, string> = { arch: p.arch, distro };
  if (p.epoch !== null) qualifiers['epoch'] = String(p.epoch);
  return new PackageURL('rpm', vendor, p.name, `${p.version}-${p.release}`, qualifiers).toString();
}

/** Parse a purl back into RPM fields (for checks: every purl Lenix writes must parse to what it names). */
export function parseRpmPurl(purl: string): {
  vendor: string;
  name: string;
  version: string;
  release: string;
  epoch: number | null;
  arch: string;
  distro: string;
} {
  const u = PackageURL.fromString(purl);
  if (u.type !== 'rpm' || !u.version) throw new LenixError('BAD_REQUEST', `not an rpm purl: ${purl}`);
  const dash = u.version.lastIndexOf('-');
  const q = (u.qualifiers ?? {}) as Record<string, string>;
  return {
    vendor: u.namespace ?? '',
    name: u.name,
    version: u.version.slice(0, dash),
    release: u.version.slice(dash + 1),
    epoch: q['epoch'] === undefined ? null : Number(q['epoch']),
    arch: q['arch'] ?? '',
    distro: q['distro'] ?? '',
  };
}

/** A stable UUID (RFC 9562 layout, version 5 bits) from the model: same model, same serial number. */
export function stableUuid(input: SbomInput, format: string): string {
  return uuidFromDigest(sha256(new TextEncoder().encode(`${format}\n${JSON.stringify(input)}`)));
}

/** A UUID in RFC 9562's layout (version 5 bits) from the first 16 bytes of a digest. */
export function uuidFromDigest(digest: Uint8Array): string {
  const h = Buffer.from(digest.subarray(0, 16));
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export const packageRef = (p: Pick<SbomPackage, 'sha256'>) => `rpm-${p.sha256}`;
/**
 * A buildroot item's ref: readable, and unique by content (a short digest of everything it records), since names
 * that differ only in characters a ref cannot hold (`a+b`, `a-b`) or the same package from two origins would
 * otherwise share one.
 */
export const buildrootRef = (b: BuildrootItem) =>
  `buildroot-${b.manager}-${b.name}-${b.version}${b.arch ? `-${b.arch}` : ''}`.replace(/[^A-Za-z0-9.-]/g, '-') +
  `-${buildrootKey(b).slice(0, 12)}`;

const buildrootKey = (b: BuildrootItem) =>
  createHash('sha256')
    .update(JSON.stringify([b.manager, b.name, b.version, b.arch ?? null, b.sha256 ?? null, b.origin ?? null]))
    .digest('hex');

/**
 * The input as documents describe it: each file once (the same noarch package under several repository arches is
 * one component), each buildroot item once (several tasks' records name the same packages), first seen first.
 */
export function distinctInput(input: SbomInput): SbomInput {
  const files = new Set<string>();
  const items = new Set<string>();
  return {
    ...input,
    packages: input.packages.filter((p) => !files.has(p.sha256) && files.add(p.sha256)),
    buildroot: input.buildroot.filter((b) => {
      const k = buildrootKey(b);
      return !items.has(k) && items.add(k);
    }),
  };
}

/** The purl of a buildroot package (rpm: with its arch when known), or null for tools. */
export function buildrootPurl(b: BuildrootItem): string | null {
  const enc = encodeURIComponent;
  if (b.manager === 'dpkg') return `pkg:deb/debian/${enc(b.name)}@${enc(b.version)}`;
  if (b.manager === 'rpm') return `pkg:rpm/${enc(b.name)}@${enc(b.version)}${b.arch ? `?arch=${enc(b.arch)}` : ''}`;
  return null;
}

/** Runtime Requires that resolve to a package of the same document (by name or Provides), as refs. */
export function resolveRequires(packages: readonly SbomPackage[]): Map<string, string[]> {
  const binaries = packages.filter((p) => p.arch !== 'src');
  const providers = new Map<string, SbomPackage[]>();
  for (const p of binaries) {
    for (const name of new Set([p.name, ...p.provides])) providers.set(name, [...(providers.get(name) ?? []), p]);
  }
  const out = new Map<string, string[]>();
  for (const p of binaries) {
    const deps = new Set<string>();
    for (const r of p.requires) {
      for (const q of providers.get(r) ?? []) if (q !== p) deps.add(packageRef(q));
    }
    out.set(packageRef(p), [...deps].sort());
  }
  return out;
}

/** The source package each binary package came from, when it is in the document. */
export function sourceOf(p: SbomPackage, packages: readonly SbomPackage[]): SbomPackage | undefined {
  return p.arch === 'src'
    ? undefined
    : packages.find((q) => q.arch === 'src' && q.fileName === p.sourceRpm && q.buildId === p.buildId);
}

/** Properties Lenix attaches to each package (CycloneDX properties, SPDX annotations). */
export function packageFacts(p: SbomPackage): [string, string][] {
  const facts: [string, string][] = [
    ['lenix:file-name', p.fileName],
    ['lenix:arch', p.arch],
    ['lenix:release', p.release],
    ['lenix:epoch', p.epoch === null ? '' : String(p.epoch)],
    ['lenix:build-id', String(p.buildId)],
    ['lenix:git-url', p.gitUrl],
    ['lenix:git-commit', p.commit],
  ];
  if (p.imported) {
    facts.push(['lenix:origin', 'imported'], ['lenix:import-id', String(p.imported.importId)]);
    facts.push(['lenix:import-signature', p.imported.key ?? 'unsigned (imported with --allow-unsigned)']);
  } else facts.push(['lenix:origin', 'built']);
  if (p.sourceRpm) facts.push(['lenix:source-rpm', p.sourceRpm]);
  if (p.signingKey) facts.push(['lenix:signing-key', p.signingKey]);
  if (p.buildNode) facts.push(['lenix:build-node', p.buildNode]);
  if (p.buildTime) facts.push(['lenix:build-time', p.buildTime]);
  if (p.ledgerEntries.length > 0) facts.push(['lenix:ledger-entries', p.ledgerEntries.join(',')]);
  return facts;
}

export function parseFormat(value: string | undefined): SbomFormat {
  const f = value ?? 'cyclonedx-json';
  if (!(SBOM_FORMATS as readonly string[]).includes(f))
    throw new LenixError('BAD_REQUEST', `unknown SBOM format ${f.slice(0, 40)}; use one of ${SBOM_FORMATS.join(', ')}`);
  return f as SbomFormat;
}
