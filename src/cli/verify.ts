import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { sha256File } from '../store/durable.js';
import type { ChainLink, ProofBundle, VerifiedChain, verifyChain as VerifyChainFn } from '../attest/verify-chain.js';
import { LenixError } from '../core/errors.js';
import type { LenixClient } from '../client/lenix.js';
import { apiClientFor } from './config.js';
import { checkpointSize, lastSeen, remember } from './ledger-state.js';
import { pins } from './pins.js';
import { collect, printJson } from './output.js';

type VerifyChain = typeof VerifyChainFn;

/**
 * `lenix verify FILE.rpm | SHA256 | build:ID [--server URL | --bundle FILE] --log-key KEY [--json]`, and
 * `lenix verify --installed [NAME...] [--root DIR] [--proofs DIR]` (verify-installed.ts).
 */
export function addVerifyCommand(p: Command, state: { code: number }): void {
  p.command('verify [targets...]')
    .description(
      'prove, from the transparency ledger, which commit, build node, key, test run and release produced an RPM, or every package installed on a machine (--installed)',
    )
    .option('--bundle <file>', 'verify offline from a proof bundle (PKG.rpm.proof) instead of asking the server')
    .option(
      '--log-key <key>',
      'a pinned ledger key (name+hash+base64), as `lenix up` prints it, or $LENIX_LOG_KEY; repeat it to also require the ML-DSA-44 checkpoint signature',
      collect,
    )
    .option('--witness-key <key>', 'require a cosignature on the checkpoint by this witness key (repeatable)', collect)
    .option(
      '--pq-key <base64|file>',
      'also require the ML-DSA-65 signature by this pinned key (served at /ledger/mldsa65.pub)',
    )
    .option('--sbom <file>', 'verify that this SBOM is one Lenix served (its digest is in the ledger)')
    .option('--installed', 'verify the packages installed on this machine (or --root DIR), from its rpm database')
    .option('--root <dir>', 'with --installed: the root whose rpm database is read (default /)')
    .option(
      '--proofs <dir>',
      "with --installed: verify offline from the proof bundles in DIR (the repository's Packages/*.rpm.proof)",
    )
    .option('--json', 'print JSON')
    .action(
      async (
        targets: string[],
        o: VerifyOptions & { installed?: boolean; root?: string; proofs?: string },
        cmd: Command,
      ) => {
        if (o.installed) {
          if (o.bundle || o.sbom)
            throw new LenixError('BAD_REQUEST', '--installed takes --proofs DIR, not --bundle or --sbom');
          const { verifyInstalled } = await import('./verify-installed.js');
          const failed = await verifyInstalled(cmd, targets, await pins(o), {
            root: o.root ?? '/',
            ...(o.proofs ? { proofs: o.proofs } : {}),
            json: !!o.json,
          });
          if (failed) state.code = 1;
          return;
        }
        if (o.root || o.proofs) throw new LenixError('BAD_REQUEST', '--root and --proofs go with --installed');
        await verifyOne(targets, o, () => apiClientFor(cmd));
      },
    );
}

/** The options of `lenix verify` for one target (or --sbom). */
export interface VerifyOptions {
  readonly bundle?: string;
  readonly logKey?: string[];
  readonly witnessKey?: string[];
  readonly pqKey?: string;
  readonly sbom?: string;
  readonly json?: boolean;
}

/**
 * Verify one RPM file, sha256 or build:ID (or `--sbom FILE`) and print the chain: from its proof bundle, or from
 * the server `client` reaches (asked only when there is no bundle). Throws a LenixError when it does not verify.
 */
export async function verifyOne(
  targets: readonly string[],
  o: VerifyOptions,
  client: () => Promise<LenixClient>,
): Promise<void> {
  if (targets.length > 1) throw new LenixError('BAD_REQUEST', 'give one target (or --installed NAME...)');
  const target = targets[0];
  if (o.sbom && target) throw new LenixError('BAD_REQUEST', 'give either a target or --sbom FILE');
  if (!o.sbom && !target)
    throw new LenixError('BAD_REQUEST', 'give an RPM file, a sha256, build:ID, --sbom FILE or --installed');
  const { logKeys, logKey, pq, witnesses } = await pins(o);
  const { verifyChain } = await import('../attest/verify-chain.js');
  let digest: string;
  let query: string;
  if (o.sbom) {
    digest = await sha256File(o.sbom).catch(() => {
      throw new LenixError('NOT_FOUND', `cannot read ${o.sbom}`);
    });
    query = `sha256=${digest}`;
  } else if (target === undefined) {
    throw new LenixError('BAD_REQUEST', 'nothing to verify');
  } else if (/^build:\d+$/.test(target)) {
    digest = '';
    query = `build=${target.slice(6)}`;
  } else if (/^[0-9a-f]{64}$/.test(target)) {
    digest = target;
    query = `sha256=${digest}`;
  } else {
    digest = await sha256File(target).catch(() => {
      throw new LenixError('NOT_FOUND', `cannot read ${target}`);
    });
    query = `sha256=${digest}`;
  }
  let bundle: ProofBundle;
  // Online: whether the artifact's bytes are still kept (retention may have pruned them; the proof stands).
  let pruned: { name: string; prunedAt: string } | null = null;
  let previous: { size: number; root: Uint8Array; proof: readonly string[] } | undefined;
  const seen = await lastSeen(logKey);
  if (o.bundle) bundle = JSON.parse(await readFile(o.bundle, 'utf8')) as ProofBundle;
  else {
    const api = await client();
    bundle = await api.ledger.lookup(query);
    if (digest && !o.sbom) {
      const meta = await api.artifactMeta(digest).catch(() => null);
      if (meta?.prunedAt) pruned = { name: meta.name, prunedAt: meta.prunedAt };
    }
    // A client that verified an earlier checkpoint asks for a consistency proof: a log that rewrote its
    // history (a fork) cannot produce one.
    const size = await checkpointSize(bundle.checkpoint);
    if (seen && seen.size <= size) {
      const { proof } = await api.ledger.consistency(seen.size, size);
      previous = { size: seen.size, root: new Uint8Array(Buffer.from(seen.root, 'hex')), proof };
    } else if (seen && seen.size > size) {
      throw new LenixError(
        'SIGNATURE_INVALID',
        `checkpoint: the log shows ${size} entries, fewer than the ${seen.size} seen before (rolled back)`,
      );
    }
  }
  const opts = {
    ...(previous ? { previous } : {}),
    ...(pq ? { pq } : {}),
    ...(witnesses ? { witnesses } : {}),
  };
  const require: ChainLink['stage'][] = o.sbom ? ['sbom'] : ['sign', 'build', 'source'];
  const chain = digest
    ? verifyChain(bundle, logKeys, digest, { require, ...opts })
    : verifyBuild(verifyChain, bundle, logKeys, opts);
  await remember(logKey, chain.treeSize, bundle.checkpoint);
  if (o.json) return printJson(pruned ? { ...chain, artifact: { ...pruned, bytes: 'pruned' } } : chain);
  printChain(chain);
  if (pruned)
    process.stdout.write(
      `  bytes    artifact pruned: ${pruned.name} was removed by the retention policy on ${pruned.prunedAt}; its provenance above stays in the ledger\n`,
    );
}

/** For build:ID, every statement the log holds for the build must be included and verify. */
function verifyBuild(
  verifyChain: VerifyChain,
  bundle: ProofBundle,
  logKey: readonly string[],
  opts: Parameters<VerifyChain>[3] = {},
): VerifiedChain {
  const c = verifyChain(bundle, logKey, '', { ...opts, require: [] });
  if (c.entries.length === 0) throw new LenixError('SIGNATURE_INVALID', 'no statements for this build in the log');
  return { ...c, links: c.entries };
}

/** The value at a path in a statement's predicate (verified JSON of unknown shape), or undefined. */
function at(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const key of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function describe(l: VerifiedChain['links'][number]): string {
  const p = l.statement.predicate;
  const f = (...path: string[]) => String(at(p, ...path));
  switch (l.stage) {
    case 'source':
      return `${f('repository')} commit ${f('commit')} tree ${f('tree')} spec sha256:${f('spec', 'digest', 'sha256')}`;
    case 'build':
      return (
        `build ${f('buildDefinition', 'internalParameters', 'buildId')} on ${f('runDetails', 'builder', 'id')}` +
        ` from commit ${f('buildDefinition', 'externalParameters', 'source', 'commit')}`
      );
    case 'sign':
      return `signed with key ${f('keyFingerprint')} (${list(at(p, 'packages')).length} packages)`;
    case 'test':
      return `test run ${f('result')} (${list(at(p, 'passedTests')).join(', ')})`;
    case 'release':
      return `released into ${f('repository')} snapshot ${f('snapshot')}`;
    case 'sbom':
      return `${f('format')} SBOM of ${f('describes')}`;
    case 'import':
      return `imported by ${f('importedBy')} (import ${f('importId')}), ${at(p, 'signature', 'key') ? `signature verified against ${f('signature', 'key')}` : 'unsigned'}`;
  }
}

function printChain(c: VerifiedChain): void {
  const out = [
    `verified against checkpoint ${c.origin} at tree size ${c.treeSize}${c.target ? ` for sha256:${c.target}` : ''}`,
  ];
  for (const l of c.links) out.push(`  ${l.stage.padEnd(8)} entry ${String(l.index).padEnd(5)} ${describe(l)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
