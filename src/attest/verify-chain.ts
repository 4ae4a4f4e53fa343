import { LenixError } from '../core/errors.js';
import { type Checkpoint, parseCheckpoint } from '../ledger/checkpoint.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../ledger/merkle.js';
import { SIG_ED25519, openNote, parseVerifierKey, type VerifierKey } from '../ledger/note.js';
import { checkSecondSignature, openEnvelope, type Envelope } from './dsse.js';
import { verifyManifestProof, type ManifestProof } from './manifest.js';
import type { Statement } from './statements.js';

/** What `lenix verify` checks, offline: a checkpoint, entries with inclusion proofs, their statements. */
export interface ProofBundle {
  readonly checkpoint: string; // signed note
  readonly entries: readonly {
    readonly index: number;
    readonly entry: string /* base64 of the log entry */;
    readonly proof: readonly string[] /* hex */;
  }[];
  /** For releases listed in a manifest: the package's line with its inclusion proof in the manifest tree. */
  readonly manifests?: readonly ManifestProof[];
}

export interface ChainLink {
  readonly stage: 'source' | 'build' | 'sign' | 'test' | 'release' | 'sbom' | 'import';
  readonly index: number;
  readonly statement: Statement;
}

export interface VerifiedChain {
  readonly treeSize: number;
  readonly origin: string;
  readonly target: string;
  readonly links: readonly ChainLink[];
  /** Every entry of the bundle, verified. */
  readonly entries: readonly ChainLink[];
  readonly summary: {
    readonly source?: { repository: string; commit: string; tree: string };
    readonly build?: { buildId: number; builders: string; commit: string };
    readonly sign?: { key: string; unsigned: string };
    readonly test?: { result: string };
    /** A package imported rather than built: the key its signature verified against (null: unsigned). */
    readonly import?: { key: string | null; importedBy: string };
    readonly releases: readonly { repository: string; snapshot: number }[];
  };
}

function fail(link: string, why: string): never {
  throw new LenixError('SIGNATURE_INVALID', `${link}: ${why}`);
}

const names = (s: Statement) =>
  s.subject.map((x) => x.digest['sha256']).filter((x): x is string => typeof x === 'string');

/**
 * Check a bundle against the pinned log key and follow the chain for one artifact digest:
 * release → test → sign (signed → unsigned digest, key) → build (unsigned digest → commit, builder) → source.
 * Every entry must be included in the checkpoint's tree; every statement's DSSE signature must verify.
 * `previous`, when given, is a checkpoint the client verified earlier: the new one must be consistent with it.
 */
export function verifyChain(
  bundle: ProofBundle,
  logKeys: string | readonly string[],
  target: string,
  opts: {
    require?: readonly ChainLink['stage'][];
    previous?: { size: number; root: Uint8Array; proof: readonly string[] };
    /** A pinned post-quantum key: every statement must also carry its valid signature. */
    pq?: { keyid: string; verify(message: Uint8Array, signature: Uint8Array): boolean };
    /** Pinned witness keys (C2SP tlog-cosignature): the checkpoint must carry a valid cosignature by each. */
    witnesses?: readonly string[];
  } = {},
): VerifiedChain {
  const pinned = typeof logKeys === 'string' ? [logKeys] : logKeys;
  const keys = pinned.map((k): VerifierKey => {
    try {
      return parseVerifierKey(k);
    } catch (err) {
      return fail('log key', (err as Error).message);
    }
  });
  const edIndex = keys.findIndex((k) => k.type === SIG_ED25519);
  if (edIndex < 0)
    fail('log key', "pin the log's Ed25519 key (/ledger/key); its ML-DSA-44 key may be pinned next to it");
  const key = keys[edIndex]!;
  const logKey = pinned[edIndex]!;
  let cp: Checkpoint;
  try {
    // Every pinned log key (Ed25519, and ML-DSA-44 when pinned) must have signed the checkpoint.
    cp = parseCheckpoint(openNote(bundle.checkpoint, keys, { requireAll: true }).text);
  } catch (err) {
    fail('checkpoint', (err as Error).message);
  }
  for (const k of keys)
    if (cp.origin !== k.name) fail('checkpoint', `origin ${cp.origin} is not the pinned log ${k.name}`);
  if (opts.witnesses && opts.witnesses.length > 0) {
    try {
      openNote(bundle.checkpoint, opts.witnesses.map(parseVerifierKey), { requireAll: true });
    } catch (err) {
      fail('witness', (err as Error).message);
    }
  }
  if (opts.previous) {
    const proof = opts.previous.proof.map((h) => new Uint8Array(Buffer.from(h, 'hex')));
    if (!verifyConsistency(opts.previous.size, cp.size, opts.previous.root, cp.root, proof))
      fail(
        'checkpoint',
        `not consistent with the checkpoint of size ${opts.previous.size} seen before (a forked or rewritten log)`,
      );
  }
  const links: ChainLink[] = [];
  for (const e of bundle.entries) {
    const data = new Uint8Array(Buffer.from(e.entry, 'base64'));
    const proof = e.proof.map((h) => new Uint8Array(Buffer.from(h, 'hex')));
    if (!verifyInclusion(leafHash(data), e.index, cp.size, proof, cp.root))
      fail(`entry ${e.index}`, 'not included in the signed tree (changed, removed or proof wrong)');
    let env: Envelope;
    try {
      env = JSON.parse(new TextDecoder().decode(data)) as Envelope;
    } catch {
      fail(`entry ${e.index}`, 'not a DSSE envelope');
    }
    let st: Statement;
    try {
      st = openEnvelope<Statement>(env, key, logKey);
    } catch (err) {
      fail(`entry ${e.index}`, (err as Error).message);
    }
    if (opts.pq) {
      try {
        checkSecondSignature(env, opts.pq.keyid, (m, sg) => opts.pq!.verify(m, sg));
      } catch (err) {
        fail(`entry ${e.index}`, (err as Error).message);
      }
    }
    const stage = stageOf(st.predicateType);
    if (stage) links.push({ stage, index: e.index, statement: st });
  }
  const pick = (stage: ChainLink['stage'], digest: string) =>
    links.filter((l) => l.stage === stage && names(l.statement).includes(digest)).pop();
  const inManifest = (l: ChainLink) => {
    const m = l.statement.predicate['manifest'] as { sha256: string; merkleRoot: string; count: number } | undefined;
    return (
      !!m &&
      (bundle.manifests ?? []).some(
        (p) =>
          p.manifest === m.sha256 && p.line.startsWith(`${target} `) && verifyManifestProof(p, m.merkleRoot, m.count),
      )
    );
  };
  const releases = links.filter((l) => l.stage === 'release' && (names(l.statement).includes(target) || inManifest(l)));
  const test = pick('test', target);
  const sign = pick('sign', target);
  const unsigned = sign
    ? ((sign.statement.predicate['packages'] as { signed: { sha256: string }; unsigned: { sha256: string } }[]).find(
        (p) => p.signed.sha256 === target,
      )?.unsigned.sha256 ?? '')
    : target;
  const build = pick('build', unsigned);
  const commit = (
    build?.statement.predicate['buildDefinition'] as { externalParameters: { source: { commit: string } } } | undefined
  )?.externalParameters.source.commit;
  const source = links
    .filter((l) => l.stage === 'source' && l.statement.subject.some((s) => s.digest['gitCommit'] === commit))
    .pop();
  const sbom = pick('sbom', target);
  const imported = pick('import', target);
  const chain = { source, build, sign, test, release: releases[0], sbom, import: imported };
  // An imported package has no source or build statement: its import statement stands for them.
  const required = (opts.require ?? ['source', 'build']).filter(
    (s) => !(imported && (s === 'source' || s === 'build' || s === 'sign')),
  );
  for (const stage of imported ? [...required, 'import' as const] : required)
    if (!chain[stage]) fail(stage, `no ${stage} statement for ${target} in the log`);
  if (test && test.statement.predicate['result'] !== 'PASSED' && (opts.require ?? []).includes('test'))
    fail('test', 'the recorded test result is not PASSED');
  const runDetails = build?.statement.predicate['runDetails'] as { builder: { id: string } } | undefined;
  return {
    treeSize: cp.size,
    origin: cp.origin,
    target,
    links: [imported, source, build, sign, test, ...releases, sbom].filter((l): l is ChainLink => l !== undefined),
    entries: links,
    summary: {
      ...(source
        ? {
            source: {
              repository: String(source.statement.predicate['repository']),
              commit: String(source.statement.predicate['commit']),
              tree: String(source.statement.predicate['tree']),
            },
          }
        : {}),
      ...(build && commit
        ? {
            build: {
              buildId: Number(
                (build.statement.predicate['buildDefinition'] as { internalParameters: { buildId: number } })
                  .internalParameters.buildId,
              ),
              builders: runDetails?.builder.id ?? '',
              commit,
            },
          }
        : {}),
      ...(sign ? { sign: { key: String(sign.statement.predicate['keyFingerprint']), unsigned } } : {}),
      ...(test ? { test: { result: String(test.statement.predicate['result']) } } : {}),
      ...(imported
        ? {
            import: {
              key: ((imported.statement.predicate['signature'] as { key?: string } | undefined)?.key ?? null) || null,
              importedBy: String(imported.statement.predicate['importedBy']),
            },
          }
        : {}),
      releases: releases.map((r) => ({
        repository: String(r.statement.predicate['repository']),
        snapshot: Number(r.statement.predicate['snapshot']),
      })),
    },
  };
}

/** The pipeline stage a statement's predicate type records. */
export function stageOf(predicateType: string): ChainLink['stage'] | null {
  if (predicateType.includes('/source/')) return 'source';
  if (predicateType.startsWith('https://slsa.dev/provenance/')) return 'build';
  if (predicateType.includes('/sign/')) return 'sign';
  if (predicateType.includes('test-result')) return 'test';
  if (predicateType.includes('/release/')) return 'release';
  if (predicateType.includes('/sbom/')) return 'sbom';
  if (predicateType.includes('/import/')) return 'import';
  return null;
}
