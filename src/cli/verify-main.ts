import { baseProgram, runProgram } from './run.js';
import { addVerifyCommand } from './verify.js';

/**
 * `lenix verify` on its own: the entry point of dist/lenix-verify.cjs, the verifier bundled into one CommonJS
 * file with its libraries (scripts/bundle-verifier.mjs). bin/lenix.js runs `lenix verify …` from it, as it
 * starts faster than the whole CLI's modules (docs/benchmarks.md), and an auditor can copy that one file to a
 * machine with nothing but Node: `node lenix-verify.cjs verify PKG.rpm --bundle PKG.rpm.proof --log-key KEY`.
 */
export function main(argv: readonly string[]): Promise<number> {
  return runProgram(argv, (state) => {
    const p = baseProgram();
    addVerifyCommand(p, state);
    return p;
  });
}
