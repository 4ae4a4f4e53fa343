import { LenixError } from '../core/errors.js';
import { RPM_HEADER_DIGEST } from './statements.js';
import { type ProofBundle, type VerifiedChain, verifyChain } from './verify-chain.js';

/**
 * `lenix verify --installed`, the judging part (pure): an installed package, known by the header digest its rpm
 * database keeps, against the proof bundle found for that digest. Proven when every entry is included in a
 * checkpoint signed by the pinned key and the chain runs from the package's sign (or import) statement — which
 * names this header digest — through its build to the source commit. Files changed since install are judged by
 * the caller (`rpm -V`).
 */
export type InstalledVerdict = 'proven' | 'modified files' | 'not from this Lenix' | 'proof failed';

/** The fields of an installed package the judge reads. */
export interface InstalledIdentity {
  readonly headerSha256: string | null;
  /** The short key id of the installed copy's header signature, lower case; null when unsigned. */
  readonly signatureKeyId: string | null;
}

export interface Provenance {
  /** The package file Lenix signed (or imported) with this header: its sha256. */
  readonly sha256: string;
  readonly repository: string | null;
  readonly commit: string | null;
  readonly buildId: number | null;
  readonly key: string | null;
  readonly imported: boolean;
  readonly releases: readonly string[];
  readonly ledgerEntries: readonly number[];
  readonly treeSize: number;
  readonly checkpoint: string;
}

export type Judgement =
  | { readonly verdict: 'proven'; readonly provenance: Provenance }
  | { readonly verdict: 'not from this Lenix' | 'proof failed'; readonly reason: string };

export interface JudgeOptions {
  /** The keys this Lenix signs with (fingerprints): a package signed by one of them claims to come from it. */
  readonly lenixKeys: readonly string[];
  readonly verify?: Parameters<typeof verifyChain>[3];
}

const signedBy = (fingerprint: string | null, keyId: string | null) =>
  !!fingerprint && !!keyId && fingerprint.toLowerCase().endsWith(keyId.toLowerCase());
/** The installed copy carries the signature the statement records (an unsigned import: none). */
const sameSigner = (fingerprint: string, keyId: string | null) =>
  fingerprint === '' ? keyId === null : signedBy(fingerprint, keyId);

export function judgeInstalled(
  p: InstalledIdentity,
  bundle: ProofBundle | undefined,
  logKeys: readonly string[],
  o: JudgeOptions,
): Judgement {
  const claims = o.lenixKeys.some((k) => signedBy(k, p.signatureKeyId));
  if (!bundle || !p.headerSha256) {
    return claims
      ? {
          verdict: 'proof failed',
          reason: `signed with Lenix key ${p.signatureKeyId}, but the ledger names no package with its header (sha256:${p.headerSha256 ?? 'none'})`,
        }
      : { verdict: 'not from this Lenix', reason: p.signatureKeyId ? `signed by key ${p.signatureKeyId}` : 'unsigned' };
  }
  const header = p.headerSha256;
  try {
    // Every entry of the bundle verified (inclusion, statement signatures), then the files whose statements name
    // this header: sign and import statements since header digests were recorded, release statements for
    // packages signed before (a later release names their header too).
    const all = verifyChain(bundle, logKeys, '', { ...o.verify, require: [] });
    const files = [
      ...new Set(
        all.entries.flatMap((l) =>
          l.stage === 'sign' || l.stage === 'import' || l.stage === 'release'
            ? l.statement.subject
                .filter((s) => s.digest[RPM_HEADER_DIGEST] === header && typeof s.digest['sha256'] === 'string')
                .map((s) => s.digest['sha256']!)
            : [],
        ),
      ),
    ];
    if (files.length === 0) {
      return claims
        ? { verdict: 'proof failed', reason: `the proofs found name no package with header sha256:${header}` }
        : { verdict: 'not from this Lenix', reason: 'no statement names its header' };
    }
    // The same header may have been signed more than once (a key rotation): the file whose signature the
    // installed copy carries, proven back to its build and commit (an import stands for sign, build and source).
    const signers: string[] = [];
    for (const sha256 of files.reverse()) {
      const chain = verifyChain(bundle, logKeys, sha256, { ...o.verify, require: ['sign', 'build', 'source'] });
      const key = chain.summary.sign?.key ?? chain.summary.import?.key ?? '';
      if (sameSigner(key, p.signatureKeyId))
        return { verdict: 'proven', provenance: provenanceOf(chain, sha256, !!chain.summary.import, all, bundle) };
      signers.push(key || 'no key');
    }
    return {
      verdict: 'proof failed',
      reason: p.signatureKeyId
        ? `the installed copy is signed by key ${p.signatureKeyId}; Lenix recorded it with key ${signers.join(', ')}`
        : `the installed copy carries no signature; Lenix recorded it signed by ${signers.join(', ')}`,
    };
  } catch (err) {
    if (err instanceof LenixError) return { verdict: 'proof failed', reason: err.message };
    throw err;
  }
}

function provenanceOf(
  chain: VerifiedChain,
  sha256: string,
  imported: boolean,
  all: VerifiedChain,
  bundle: ProofBundle,
): Provenance {
  const s = chain.summary;
  return {
    sha256,
    repository: s.source?.repository ?? null,
    commit: s.build?.commit ?? null,
    buildId: s.build?.buildId ?? null,
    key: s.sign?.key ?? s.import?.key ?? null,
    imported,
    releases: s.releases.map((r) => `${r.repository}@${r.snapshot}`),
    ledgerEntries: chain.links.map((l) => l.index).sort((a, b) => a - b),
    treeSize: all.treeSize,
    checkpoint: bundle.checkpoint,
  };
}
