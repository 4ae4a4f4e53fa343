import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Lists the folders of a /usr into `file` (NUL-separated, relative, each after its parent) for MAKE_ROOT's
 * skeleton (USR_FOLDERS). The agent lists them once when it starts, as it makes host-base, and puts the list in
 * each root's inputs: the root then makes its skeleton with one mkdir a folder, where walking the host's /usr in
 * every root (16,000 folders on a Debian host) took ~0.5 of the ~0.9 s a test root took to make.
 */
export async function listUsrFolders(usr: string, file: string): Promise<string> {
  // A folder this agent cannot read is left out, as it was when each root walked /usr itself.
  await run('bash', [
    '-c',
    'cd "$1" || exit 1; find . -xdev -mindepth 1 -type d -print0 2>/dev/null > "$2" || [ -s "$2" ]',
    'lenix-usr-folders',
    usr,
    file,
  ]);
  return file;
}

let libdir: Promise<string> | null = null;
/** rpm's %_libdir on this host, for a root's dynamic linker (RPM_LIBDIR of MAKE_ROOT): read once, not in every root. */
export function rpmLibdir(): Promise<string> {
  libdir ??= run('rpm', ['--eval', '%_libdir']).then(({ stdout }) => stdout.trim());
  return libdir;
}
