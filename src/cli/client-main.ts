import { addBuildCommands } from './build-commands.js';
import { baseProgram, runProgram } from './run.js';

/**
 * The build commands (`lenix builds`, `build`, `logs`, `source`, …: the ones a packager types most) on their own:
 * the entry point of dist/lenix-client.cjs, bundled with their libraries into one CommonJS file
 * (scripts/bundle-cli.mjs). bin/lenix.js runs those commands from it: Node's ES module loader resolving and
 * linking each of the CLI's modules was ~25 ms of a ~70 ms `lenix builds` on a 2-core VM (docs/benchmarks.md).
 * The program is the one the whole CLI builds for these commands (main.ts loads only their module for them).
 */
export function main(argv: readonly string[]): Promise<number> {
  return runProgram(argv, (state) => {
    const p = baseProgram();
    addBuildCommands(p, state);
    return p;
  });
}
