import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { sha256File } from '../agents/kit/client.js';
import { verifyChain, type ProofBundle, type VerifiedChain } from '../attest/verify-chain.js';
import { LenixError } from '../core/errors.js';
import { apiClientFor } from './config.js';
import { printJson } from './output.js';

/** `lenix verify FILE.rpm | SHA256 | build:ID [--server URL | --bundle FILE] --log-key KEY [--json]` */
export function addVerifyCommand(p: Command): void {
  p.command('verify <target>')
    .description('prove, from the transparency ledger, which commit, build node, key, test run and release produced an RPM')
    .option('--bundle <file>', 'verify offline from a proof bundle (PKG.rpm.proof) instead of asking the server')
    .option('--log-key <key>', 'the pinned ledger key (name+hash+base64), as `lenix up` prints it; or $LENIX_LOG_KEY')
    .option('--json', 'print JSON')
    .action(async (target: string, o: { bundle?: string; logKey?: string; json?: boolean }, cmd: Command) => {
      const logKey = o.logKey ?? process.env['LENIX_LOG_KEY'];
      if (!logKey) throw new LenixError('BAD_REQUEST', 'pin the ledger key with --log-key (printed by lenix up, served at /ledger/key)');
      let digest: string;
      let query: string;
      if (/^build:\d+$/.test(target)) {
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
      if (o.bundle) bundle = JSON.parse(await readFile(o.bundle, 'utf8')) as ProofBundle;
      else bundle = await (await apiClientFor(cmd)).json<ProofBundle>('GET', `/api/v1/ledger/lookup?${query}`);
      const chain = digest ? verifyChain(bundle, logKey, digest, { require: ['sign', 'build', 'source'] }) : verifyBuild(bundle, logKey);
      if (o.json) return printJson(chain);
      printChain(chain);
    });
}

/** For build:ID, every statement the log holds for the build must be included and verify. */
function verifyBuild(bundle: ProofBundle, logKey: string): VerifiedChain {
  const c = verifyChain(bundle, logKey, '', { require: [] });
  if (c.entries.length === 0) throw new LenixError('SIGNATURE_INVALID', 'no statements for this build in the log');
  return { ...c, links: c.entries };
}

function describe(l: VerifiedChain['links'][number]): string {
  const p = l.statement.predicate as Record<string, any>;
  switch (l.stage) {
    case 'source':
      return `${p['repository']} commit ${p['commit']} tree ${p['tree']} spec sha256:${p['spec']?.digest?.sha256}`;
    case 'build':
      return `build ${p['buildDefinition']?.internalParameters?.buildId} on ${p['runDetails']?.builder?.id} from commit ${p['buildDefinition']?.externalParameters?.source?.commit}`;
    case 'sign':
      return `signed with key ${p['keyFingerprint']} (${(p['packages'] ?? []).length} packages)`;
    case 'test':
      return `test run ${p['result']} (${[...(p['passedTests'] ?? [])].join(', ')})`;
    case 'release':
      return `released into ${p['repository']} snapshot ${p['snapshot']}`;
  }
}

function printChain(c: VerifiedChain): void {
  const out = [`verified against checkpoint ${c.origin} at tree size ${c.treeSize}${c.target ? ` for sha256:${c.target}` : ''}`];
  for (const l of c.links) out.push(`  ${l.stage.padEnd(8)} entry ${String(l.index).padEnd(5)} ${describe(l)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}
