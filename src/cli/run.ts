import { Command, CommanderError } from 'commander';
import { reportFailure } from './fail.js';
import { LENIX_VERSION } from '../core/version.js';

/** Adds a command (or a group) to the program; `state.code` is the exit code an action asks for. */
export type Register = (p: Command, state: { code: number }) => void;

/** The `lenix` program with its global options and no command yet. */
export function baseProgram(): Command {
  return new Command('lenix')
    .version(LENIX_VERSION)
    .description('Lenix: build, sign, test and publish RPM packages from git, transparently')
    .option('--server <url>', 'server URL (default: $LENIX_SERVER, the config file, or http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default: $LENIX_TOKEN or the config file)')
    .showHelpAfterError()
    .exitOverride();
}

/**
 * Parse and run `argv` with the program `make` builds; returns the exit code. Errors print one line:
 * `lenix: CODE: reason` (commander's own usage errors exit 2).
 */
export async function runProgram(
  argv: readonly string[],
  make: (state: { code: number }) => Promise<Command> | Command,
): Promise<number> {
  try {
    const state = { code: 0 };
    await (await make(state)).parseAsync([...argv]);
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    return reportFailure(err);
  }
}
