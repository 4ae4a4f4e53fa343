import { mkdtemp, readFile, rm, symlink, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { LenixError } from '../core/errors.js';
import { createrepo } from './tools.js';

/** The three per-package documents of rpm-md (createrepo_c's primary, filelists and other entries). */
export const METADATA_KINDS = ['primary', 'filelists', 'other'] as const;
export type MetadataKind = (typeof METADATA_KINDS)[number];

/**
 * One package's repository metadata, exactly as createrepo_c writes it: for each kind the `<package …>` element
 * and its newline as one gzip member (`gz`) and that text's length (`size`), so a repository's primary.xml.gz is
 * a header member, these members in any order, and a footer member, concatenated (RFC 1952 §2.2 allows members
 * in sequence; zlib, librepo and libsolv read them as one stream).
 */
export interface PackageMetadata {
  /** The package's SHA-256 (createrepo_c's pkgid). */
  readonly sha256: string;
  /** The file name under Packages/ (the entry's `<location href="Packages/NAME"/>`). */
  readonly file: string;
  /** The length of each entry's text (what the member inflates to). */
  readonly size: Readonly<Record<MetadataKind, number>>;
  readonly gz: Readonly<Record<MetadataKind, Buffer>>;
  /** The text each member inflates to (not stored: the server's entry pack keeps it, entry-pack.ts). */
  readonly text: Readonly<Record<MetadataKind, Buffer>>;
}

/** The document around the package entries, as createrepo_c writes it. */
export function metadataHeader(kind: MetadataKind, packages: number): string {
  const open = {
    primary: '<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"',
    filelists: '<filelists xmlns="http://linux.duke.edu/metadata/filelists"',
    other: '<otherdata xmlns="http://linux.duke.edu/metadata/other"',
  }[kind];
  return `<?xml version="1.0" encoding="UTF-8"?>\n${open} packages="${packages}">\n`;
}

export function metadataFooter(kind: MetadataKind): string {
  return { primary: '</metadata>', filelists: '</filelists>', other: '</otherdata>' }[kind];
}

/**
 * Derive the repository metadata of packages once, when they are recorded: createrepo_c runs over a folder of
 * links to them (so the entries are createrepo_c's own, byte for byte) and its output is cut into one entry
 * per package. Each entry must name the digest it was derived for; anything else is BLOB_CORRUPT.
 */
export async function derivePackageMetadata(
  packages: readonly { readonly file: string; readonly name: string; readonly sha256: string }[],
): Promise<PackageMetadata[]> {
  if (packages.length === 0) return [];
  const dir = await mkdtemp(path.join(tmpdir(), 'lenix-md-'));
  try {
    await mkdir(path.join(dir, 'Packages'));
    const wanted = new Map<string, string>(); // sha256 → file name
    for (const p of packages) {
      if (wanted.has(p.sha256)) continue;
      if (!/^[A-Za-z0-9][A-Za-z0-9._+~^-]*\.rpm$/.test(p.name))
        throw new LenixError('INVALID_NAME', `not a package file name: ${p.name.slice(0, 100)}`);
      if ([...wanted.values()].includes(p.name))
        throw new LenixError('INVALID_NAME', `two packages named ${p.name} in one metadata run`);
      wanted.set(p.sha256, p.name);
      await symlink(p.file, path.join(dir, 'Packages', p.name));
    }
    await createrepo(dir, { compress: 'gz', simpleNames: true });
    const entries = {} as Record<MetadataKind, Map<string, Buffer>>;
    for (const kind of METADATA_KINDS) {
      const text = gunzipSync(await readFile(path.join(dir, 'repodata', `${kind}.xml.gz`))).toString('utf8');
      entries[kind] = splitEntries(kind, text);
    }
    return [...wanted].map(([sha256, file]) => {
      const gz = {} as Record<MetadataKind, Buffer>;
      const size = {} as Record<MetadataKind, number>;
      const text = {} as Record<MetadataKind, Buffer>;
      for (const kind of METADATA_KINDS) {
        const entry = entries[kind].get(sha256);
        if (!entry) throw new LenixError('BLOB_CORRUPT', `${file} does not hash to ${sha256}: no metadata derived`);
        size[kind] = entry.length;
        gz[kind] = gzipSync(entry);
        text[kind] = entry;
      }
      return { sha256, file, size, gz, text };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PKGID: Record<MetadataKind, RegExp> = {
  primary: /<checksum type="sha256" pkgid="YES">([0-9a-f]{64})<\/checksum>/,
  filelists: /^<package pkgid="([0-9a-f]{64})"/,
  other: /^<package pkgid="([0-9a-f]{64})"/,
};

/**
 * createrepo_c's document cut at its `<package` elements. Element text is escaped, so `</package>` only ever
 * closes an element; each entry is keyed by the package digest it names.
 */
export function splitEntries(kind: MetadataKind, text: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = text.indexOf('\n<package ');
  while (at >= 0) {
    const end = text.indexOf('</package>\n', at);
    if (end < 0) throw new LenixError('INTERNAL', `createrepo_c ${kind} output ends inside a package`);
    const entry = text.slice(at + 1, end + '</package>\n'.length);
    const sha = PKGID[kind].exec(entry)?.[1];
    if (!sha) throw new LenixError('INTERNAL', `createrepo_c ${kind} entry without a sha256 pkgid`);
    out.set(sha, Buffer.from(entry, 'utf8'));
    at = text.indexOf('\n<package ', end);
  }
  return out;
}
