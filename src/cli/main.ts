import type { Command } from 'commander';
import { baseProgram, type Register, runProgram } from './run.js';

/**
 * Each command's registration module, loaded only for the command that runs (a client command then loads the
 * client, not the server, agents or store). `--help`, an unknown command or no command load them all;
 * test/cli-startup.test.ts checks this table against the whole program.
 */
export const COMMAND_MODULES: Readonly<Record<string, () => Promise<Register>>> = {
  ...each(['up', 'server', 'node'], async () => (await import('./role-commands.js')).addRoleCommands),
  ...each(
    ['source', 'build', 'builds', 'chain-build', 'rebuild', 'batch', 'logs', 'agents', 'lookaside', 'hook'],
    async () => (await import('./build-commands.js')).addBuildCommands,
  ),
  ...each(['target'], async () => (await import('./target-commands.js')).addTargetCommands),
  ...each(['import'], async () => (await import('./import-command.js')).addImportCommand),
  ...each(['token'], async () => (await import('./token-commands.js')).addTokenCommands),
  ...each(
    ['signer', 'tester', 'keys', 'repo', 'release', 'releases'],
    async () => (await import('./release-commands.js')).addReleaseCommands,
  ),
  ...each(['fsck'], async () => (await import('./fsck-command.js')).addFsckCommand),
  ...each(['mirror', 'prune'], async () => (await import('./mirror-commands.js')).addMirrorCommands),
  ...each(['migrate'], async () => (await import('./migrate-command.js')).addMigrateCommand),
  ...each(['verify'], async () => (await import('./verify.js')).addVerifyCommand),
  ...each(['sbom'], async () => (await import('./sbom-command.js')).addSbomCommand),
  ...each(['errata'], async () => (await import('./errata-commands.js')).addErrataCommands),
  ...each(['witness', 'ledger'], async () => {
    const [{ addLedgerCommands }, { waitForSignal }] = await Promise.all([
      import('./ledger-commands.js'),
      import('./signals.js'),
    ]);
    return (p: Command) => addLedgerCommands(p, waitForSignal);
  }),
};

function each(names: readonly string[], load: () => Promise<Register>): Record<string, () => Promise<Register>> {
  return Object.fromEntries(names.map((n) => [n, load]));
}

/** The first word of the command line that is not a global option or its value. */
function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--server' || a === '--token') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** `state.code` is the exit code an action asks for (commander discards action return values). */
export async function program(state: { code: number }, argv: readonly string[] = []): Promise<Command> {
  const p = baseProgram();
  const word = commandWord(argv);
  const one = word === undefined ? undefined : COMMAND_MODULES[word];
  const versionOnly = word === undefined && argv.slice(2).some((a) => a === '-V' || a === '--version');
  const loaders = one ? [one] : versionOnly ? [] : [...new Set(Object.values(COMMAND_MODULES))];
  for (const register of await Promise.all(loaders.map((load) => load()))) register(p, state);
  return p;
}

/** Run the CLI; returns the exit code. Errors print one line: `lenix: CODE: reason`. */
export function main(argv: readonly string[]): Promise<number> {
  return runProgram(argv, (state) => program(state, argv));
}
