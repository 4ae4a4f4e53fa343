import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { sha256File } from '../store/durable.js';
import type { ChainLink, ProofBundle, VerifiedChain, verifyChain as VerifyChainFn } from '../attest/verify-chain.js';

type VerifyChain = typeof VerifyChainFn;
import { LenixError } from '../core/errors.js';
import { apiClientFor, configPath } from './config.js';
import { collect, printJson } from './output.js';

/** `lenix verify FILE.rpm | SHA256 | build:ID [--server URL | --bundle FILE] --log-key KEY [--json]` */
export function addVerifyCommand(p: Command): void {
  p.command('verify [target]')
    .description(
      'prove, from the transparency ledger, which commit, build node, key, test run and release produced an RPM',
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
    .option('--json', 'print JSON')
    .action(
      async (
        target: string | undefined,
        o: { bundle?: string; logKey?: string[]; witnessKey?: string[]; pqKey?: string; sbom?: string; json?: boolean },
        cmd: Command,
      ) => {
        if (o.sbom && target) throw new LenixError('BAD_REQUEST', 'give either a target or --sbom FILE');
        if (!o.sbom && !target)
          throw new LenixError('BAD_REQUEST', 'give an RPM file, a sha256, build:ID, or --sbom FILE');
        const logKeys =
          o.logKey ?? (process.env['LENIX_LOG_KEY'] ? process.env['LENIX_LOG_KEY'].split(/\s+/).filter(Boolean) : []);
        // The proof checking loads only here; the post-quantum library only when an ML-DSA key is pinned.
        const keyType = (k: string) => Buffer.from(k.split('+')[2] ?? '', 'base64')[0];
        const { verifyChain } = await import('../attest/verify-chain.js');
        const { SIG_ED25519, SIG_COSIGNATURE_MLDSA44 } = await import('../ledger/note.js');
        if ([...logKeys, ...(o.witnessKey ?? [])].some((k) => keyType(k) === SIG_COSIGNATURE_MLDSA44))
          await import('../ledger/note-mldsa.js');
        // Remembered checkpoints are kept per log, named by its (first) Ed25519 key.
        const logKey = logKeys.find((k) => keyType(k) === SIG_ED25519) ?? logKeys[0];
        if (!logKey)
          throw new LenixError(
            'BAD_REQUEST',
            'pin the ledger key with --log-key (printed by lenix up, served at /ledger/key)',
          );
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
          const api = await apiClientFor(cmd);
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
        let pq: { keyid: string; verify(m: Uint8Array, s: Uint8Array): boolean } | undefined;
        if (o.pqKey) {
          const text =
            /^[A-Za-z0-9+/=\s]+$/.test(o.pqKey) && o.pqKey.length > 100 ? o.pqKey : await readFile(o.pqKey, 'utf8');
          const pub = new Uint8Array(Buffer.from(text.trim(), 'base64'));
          const [{ mldsaKeyId }, { mldsaVerify }] = await Promise.all([
            import('../attest/dsse.js'),
            import('../crypto/mldsa.js'),
          ]);
          pq = { keyid: mldsaKeyId(pub), verify: (m, sg) => mldsaVerify(65, pub, m, sg) };
        }
        const opts = {
          ...(previous ? { previous } : {}),
          ...(pq ? { pq } : {}),
          ...(o.witnessKey ? { witnesses: o.witnessKey } : {}),
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
      },
    );
}

/** The last checkpoint this client verified for a log (per pinned key), so a fork is noticed later. */
function statePath(): string {
  return path.join(path.dirname(configPath()), 'ledger-state.json');
}

async function lastSeen(logKey: string): Promise<{ size: number; root: string } | null> {
  try {
    const all = JSON.parse(await readFile(statePath(), 'utf8')) as Record<string, { size: number; root: string }>;
    return all[logKey] ?? null;
  } catch {
    return null;
  }
}

async function remember(logKey: string, size: number, note: string): Promise<void> {
  let all: Record<string, { size: number; root: string }> = {};
  try {
    all = JSON.parse(await readFile(statePath(), 'utf8')) as typeof all;
  } catch {
    /* first use */
  }
  const { parseCheckpoint } = await import('../ledger/checkpoint.js');
  const root = Buffer.from(parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1)).root).toString('hex');
  if ((all[logKey]?.size ?? -1) > size) return;
  all[logKey] = { size, root };
  await mkdir(path.dirname(statePath()), { recursive: true });
  await writeFile(statePath(), `${JSON.stringify(all, null, 2)}\n`);
}

async function checkpointSize(note: string): Promise<number> {
  const { parseCheckpoint } = await import('../ledger/checkpoint.js');
  return parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1)).size;
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
