import { Command, CommanderError } from 'commander';
import { LenixError } from '../core/errors.js';
import { addReleaseCommands } from './release-commands.js';
import { addVerifyCommand } from './verify.js';
import { addSbomCommand } from './sbom-command.js';
import { addErrataCommands } from './errata-commands.js';
import { LENIX_VERSION } from '../core/version.js';
import { addBuildCommands } from './build-commands.js';
import { addRoleCommands, waitForSignal } from './role-commands.js';
import { addTokenCommands } from './token-commands.js';
import { addTargetCommands } from './target-commands.js';
import { addImportCommand } from './import-command.js';
import { addLedgerCommands } from './ledger-commands.js';
import { addFsckCommand } from './fsck-command.js';

/** `state.code` is the exit code an action asks for (commander discards action return values). */
function program(state: { code: number }): Command {
  const p = new Command('lenix')
    .version(LENIX_VERSION)
    .description('Lenix: build, sign, test and publish RPM packages from git, transparently')
    .option('--server <url>', 'server URL (default: $LENIX_SERVER, the config file, or http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default: $LENIX_TOKEN or the config file)')
    .showHelpAfterError()
    .exitOverride();
  addRoleCommands(p);
  addBuildCommands(p, state);
  addTargetCommands(p);
  addImportCommand(p, state);
  addTokenCommands(p);
  addReleaseCommands(p, state);
  addFsckCommand(p, state);
  addVerifyCommand(p);
  addSbomCommand(p);
  addErrataCommands(p);
  addLedgerCommands(p, waitForSignal);
  return p;
}

/** Run the CLI; returns the exit code. Errors print one line: `lenix: CODE: reason`. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const state = { code: 0 };
    await program(state).parseAsync([...argv]);
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof LenixError) {
      process.stderr.write(`lenix: ${err.code}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`lenix: INTERNAL: ${(err as Error).message}\n`);
    return 7;
  }
}
