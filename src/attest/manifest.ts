import { LenixError } from '../core/errors.js';
import { MemoryHashes, inclusionProof, leafHash, rootHash, sha256, verifyInclusion } from '../ledger/merkle.js';

/**
 * A release manifest: the packages of a large release, which do not fit a 64 KiB log entry. It is a text
 * file, one line per package, `<sha256> <arch> <file name>`, sorted by digest, each ending in a newline.
 * The release statement carries its sha256 and the RFC 6962 Merkle root over its lines, so a proof bundle
 * proves one package is in the release with one line and a logarithmic inclusion proof, not the whole file.
 */
export const MANIFEST_FORMAT = 'https://lenix.dev/release-manifest/v1';
/** Releases with more packages than this list them in a manifest. */
export const MANIFEST_THRESHOLD = 200;

export interface ManifestPackage {
  readonly name: string;
  readonly arch: string;
  readonly sha256: string;
}

export interface Manifest {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly root: string; // hex
  readonly count: number;
  readonly lines: readonly string[];
}

export interface ManifestProof {
  readonly manifest: string; // the manifest's sha256
  readonly line: string;
  readonly index: number;
  readonly proof: readonly string[]; // hex
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const enc = new TextEncoder();

function tree(lines: readonly string[]): MemoryHashes {
  const t = new MemoryHashes();
  for (const l of lines) t.append(leafHash(enc.encode(l)));
  return t;
}

export function buildManifest(packages: readonly ManifestPackage[]): Manifest {
  const lines = [...new Map(packages.map((p) => [`${p.sha256} ${p.arch} ${p.name}`, p])).keys()].sort();
  for (const l of lines)
    if (!/^[0-9a-f]{64} \S+ \S+$/.test(l))
      throw new LenixError('BAD_REQUEST', `not a manifest line: ${l.slice(0, 100)}`);
  const bytes = enc.encode(lines.map((l) => `${l}\n`).join(''));
  return {
    bytes,
    sha256: hex(sha256(bytes)),
    root: hex(rootHash(tree(lines), lines.length)),
    count: lines.length,
    lines,
  };
}

export function parseManifest(bytes: Uint8Array): Manifest {
  const text = new TextDecoder().decode(bytes);
  if (text.length > 0 && !text.endsWith('\n')) throw new LenixError('BAD_REQUEST', 'a manifest ends in a newline');
  const m = buildManifest(
    text
      .split('\n')
      .slice(0, -1)
      .map((l) => {
        const [sha, arch, name] = l.split(' ');
        return { sha256: sha ?? '', arch: arch ?? '', name: name ?? '' };
      }),
  );
  if (m.sha256 !== hex(sha256(bytes))) throw new LenixError('BAD_REQUEST', 'manifest lines are not sorted and unique');
  return m;
}

/** Proofs that the packages with this digest are lines of the manifest. */
export function manifestProofs(m: Manifest, digest: string): ManifestProof[] {
  const t = tree(m.lines);
  const out: ManifestProof[] = [];
  m.lines.forEach((line, index) => {
    if (line.startsWith(`${digest} `))
      out.push({ manifest: m.sha256, line, index, proof: inclusionProof(t, index, m.count).map(hex) });
  });
  return out;
}

/** Check that `p.line` is line `p.index` of a manifest of `count` lines with this Merkle root. */
export function verifyManifestProof(p: ManifestProof, root: string, count: number): boolean {
  if (!/^[0-9a-f]{64}$/.test(root) || !Number.isSafeInteger(p.index)) return false;
  const proof = p.proof.map((h) => new Uint8Array(Buffer.from(h, 'hex')));
  return verifyInclusion(leafHash(enc.encode(p.line)), p.index, count, proof, new Uint8Array(Buffer.from(root, 'hex')));
}
