import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LenixError } from '../../core/errors.js';
import { hostArch } from '../../rpm/arch.js';
import { emulationProblem, ROOT_ARCHES, ROOT_INFO, ROOT_RECIPE, type SystemRootInfo } from './system-root.js';

export interface CreateRootOptions {
  readonly arch: string;
  readonly dir: string;
  /** Debian mirror; default DEFAULT_MIRROR. */
  readonly mirror?: string;
  readonly say: (line: string) => void;
}

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

/**
 * Make a system root (system-root.ts) for `arch` in `dir`: Debian's debootstrap, for a foreign architecture in its
 * two stages (unpack with the host's tools, then configure inside the root, where binfmt_misc runs every program
 * through qemu-user). Needs root (debootstrap installs as root into the folder, with owners and device nodes).
 * The root is made beside `dir` and renamed into place when complete, so a root that exists is a whole one.
 */
export async function createSystemRoot(o: CreateRootOptions): Promise<SystemRootInfo> {
  const known = ROOT_ARCHES[o.arch];
  if (!known)
    throw new LenixError(
      'BAD_REQUEST',
      `no root can be made for ${o.arch}: known are ${Object.keys(ROOT_ARCHES).join(', ')}`,
    );
  if (process.getuid?.() !== 0) throw new LenixError('FORBIDDEN', 'making a system root needs root (debootstrap)');
  const debootstrap = ['/usr/sbin/debootstrap', '/usr/bin/debootstrap'].find((p) => existsSync(p));
  if (!debootstrap)
    throw new LenixError(
      'EMULATION_UNAVAILABLE',
      'debootstrap is not installed (scripts/bootstrap.sh installs it on Debian; roots on EL hosts are not supported yet)',
    );
  const dir = path.resolve(o.dir);
  if (existsSync(dir) && (await readdir(dir)).length > 0)
    throw new LenixError('SYSTEM_ROOT_INVALID', `${dir} exists and is not empty`);
  const mirror = o.mirror ?? DEFAULT_MIRROR;
  const foreign = o.arch !== hostArch();
  if (foreign) await enableEmulation(o.arch, o.say);
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  try {
    const started = Date.now();
    const args = [
      ...(foreign ? ['--foreign'] : []),
      `--arch=${known.debian}`,
      `--variant=${ROOT_RECIPE.variant}`,
      `--include=${ROOT_RECIPE.packages.join(',')}`,
      ROOT_RECIPE.suite,
      partial,
      mirror,
    ];
    // The first stage downloads everything: a mirror that fails a download is tried again, from nothing, twice.
    for (let attempt = 1; ; attempt++) {
      o.say(`debootstrap ${ROOT_RECIPE.suite} ${known.debian} from ${mirror} into ${partial}`);
      const failed = await runLogged(debootstrap, args, o.say).then(
        () => null,
        (err: unknown) => err,
      );
      if (failed === null) break;
      if (attempt === DOWNLOAD_ATTEMPTS || !DOWNLOAD_FAILED.test((failed as Error).message)) throw failed;
      o.say(`a download failed (${(failed as Error).message}); trying again (${attempt + 1} of ${DOWNLOAD_ATTEMPTS})`);
      await rm(partial, { recursive: true, force: true });
    }
    if (foreign) {
      o.say(`second stage inside the root, every program run through qemu-${known.qemu} (emulated: minutes)`);
      await runLogged('chroot', [partial, '/debootstrap/debootstrap', '--second-stage'], o.say);
    }
    // The downloaded .debs are not part of the root.
    await runLogged('find', [path.join(partial, 'var/cache/apt/archives'), '-name', '*.deb', '-delete'], o.say);
    const info: SystemRootInfo = {
      arch: o.arch,
      debianArch: known.debian,
      suite: ROOT_RECIPE.suite,
      mirror,
      packages: [...ROOT_RECIPE.packages],
      createdAt: new Date().toISOString(),
    };
    await writeFile(path.join(partial, ROOT_INFO), `${JSON.stringify(info, null, 2)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
    o.say(`root for ${o.arch} ready in ${dir} (${Math.round((Date.now() - started) / 1000)} s)`);
    return info;
  } catch (err) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Make the kernel run `arch`'s programs: mount binfmt_misc where nothing did, and enable qemu-user-static's
 * handler (registered with the F flag by binfmt-support). Says each step; a coded error when it cannot.
 */
export async function enableEmulation(arch: string, say: (line: string) => void): Promise<void> {
  if ((await emulationProblem(arch)) === null) return;
  if (!existsSync('/proc/sys/fs/binfmt_misc/register')) {
    say('mounting binfmt_misc at /proc/sys/fs/binfmt_misc (programs of other architectures run through qemu-user)');
    await runLogged('mount', ['-t', 'binfmt_misc', 'binfmt_misc', '/proc/sys/fs/binfmt_misc'], say);
  }
  const qemu = ROOT_ARCHES[arch]?.qemu ?? arch;
  if ((await emulationProblem(arch)) !== null && existsSync('/usr/sbin/update-binfmts')) {
    say(`enabling the binfmt_misc handler qemu-${qemu} (update-binfmts)`);
    await runLogged('/usr/sbin/update-binfmts', ['--enable', `qemu-${qemu}`], say).catch(() => undefined);
  }
  const problem = await emulationProblem(arch);
  if (problem) throw new LenixError('EMULATION_UNAVAILABLE', `cannot run ${arch} programs here: ${problem}`);
}

const DOWNLOAD_ATTEMPTS = 3;
/** debootstrap's last line when fetching from the mirror failed (a network or mirror fault, worth another try). */
const DOWNLOAD_FAILED = /Failed getting release file|Couldn't download|Failed getting release signature file/;

function runLogged(cmd: string, args: string[], say: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (d: Buffer) => {
      const text = d.toString('utf8');
      tail = (tail + text).slice(-2000);
      for (const line of text.split('\n')) if (line.trim()) say(line.trimEnd());
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => reject(new LenixError('INTERNAL', `${cmd}: ${e.message}`)));
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            new LenixError(
              'SYSTEM_ROOT_INVALID',
              `${path.basename(cmd)} exited ${code}: ${tail.trim().split('\n').pop() ?? ''}`.slice(0, 500),
            ),
          ),
    );
  });
}
