import { LenixError } from '../core/errors.js';

/**
 * Print a command's failure as one line, `lenix: CODE: reason`, and return its exit code (7 for an unexpected
 * error). Free of commander, so that the verifier's offline path (verify-main.ts) can use it.
 */
export function reportFailure(err: unknown): number {
  if (err instanceof LenixError) {
    process.stderr.write(`lenix: ${err.code}: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`lenix: INTERNAL: ${(err as Error).message}\n`);
  return 7;
}
