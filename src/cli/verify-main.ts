import { parseArgs } from 'node:util';
import { LenixError } from '../core/errors.js';
import { reportFailure } from './fail.js';
import { addVerifyCommand, verifyOne, type VerifyOptions } from './verify.js';

/**
 * `lenix verify` on its own: the entry point of dist/lenix-verify.cjs, the verifier bundled into one CommonJS
 * file with its libraries (scripts/bundle-cli.mjs). bin/lenix.js runs `lenix verify …` from it, as it
 * starts faster than the whole CLI's modules (docs/benchmarks.md), and an auditor can copy that one file to a
 * machine with nothing but Node: `node lenix-verify.cjs verify PKG.rpm --bundle PKG.rpm.proof --log-key KEY`.
 *
 * The offline verification of one target (`verify TARGET --bundle FILE` with its pins) runs without loading
 * commander (~8 ms of a ~50 ms run on a 2-core VM, with the child_process and net modules it requires); any
 * other arguments, help and usage errors included, go through the whole `verify` command.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const offline = offlineArguments(argv);
  if (offline) {
    try {
      await verifyOne([offline.target], offline.options, () => {
        throw new LenixError('BAD_REQUEST', 'an offline verification asks no server');
      });
      return 0;
    } catch (err) {
      return reportFailure(err);
    }
  }
  // commander comes with run.js, loaded only here (verify.ts imports only its types).
  const { baseProgram, runProgram } = await import('./run.js');
  return runProgram(argv, (state) => {
    const p = baseProgram();
    addVerifyCommand(p, state);
    return p;
  });
}

/**
 * `verify TARGET --bundle FILE [--log-key K]... [--witness-key K]... [--pq-key K] [--json]` and nothing else, or
 * null. Options as commander takes them (`--opt value` or `--opt=value`); an unknown or misspelt one, a
 * missing value, or a second target is null, so the whole command answers it as it always has.
 */
function offlineArguments(argv: readonly string[]): { target: string; options: VerifyOptions } | null {
  try {
    const { values, positionals } = parseArgs({
      args: argv.slice(2),
      allowPositionals: true,
      strict: true,
      options: {
        bundle: { type: 'string' },
        'log-key': { type: 'string', multiple: true },
        'witness-key': { type: 'string', multiple: true },
        'pq-key': { type: 'string' },
        json: { type: 'boolean' },
      },
    });
    const [command, target, ...more] = positionals;
    if (command !== 'verify' || target === undefined || more.length > 0 || values.bundle === undefined) return null;
    // A value that looks like an option is commander's to refuse (`--bundle --json`), not a file name.
    const given = [values.bundle, values['pq-key'], ...(values['log-key'] ?? []), ...(values['witness-key'] ?? [])];
    if ([target, ...given].some((v) => v !== undefined && v.startsWith('-'))) return null;
    return {
      target,
      options: {
        bundle: values.bundle,
        ...(values['log-key'] ? { logKey: values['log-key'] } : {}),
        ...(values['witness-key'] ? { witnessKey: values['witness-key'] } : {}),
        ...(values['pq-key'] !== undefined ? { pqKey: values['pq-key'] } : {}),
        ...(values.json ? { json: true } : {}),
      },
    };
  } catch {
    return null;
  }
}
