import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { BuildrootRecord } from '../../core/protocol.js';
import { hostArch } from '../../rpm/arch.js';

const run = promisify(execFile);

/**
 * System roots: a folder holding another system's /usr and /etc (Debian's, made by debootstrap) that sandboxes use
 * instead of the host's. A root of a foreign architecture is how one x86_64 machine builds and tests aarch64,
 * ppc64le and s390x packages: the kernel hands every foreign program to qemu-user through binfmt_misc, and with
 * the F flag it opened the emulator when the handler was registered, so nothing of qemu is needed in the root.
 */

/** The architectures a root can be made for: rpm's name, Debian's, and qemu's binfmt_misc handler. */
export const ROOT_ARCHES: Readonly<Record<string, { readonly debian: string; readonly qemu: string }>> = {
  x86_64: { debian: 'amd64', qemu: 'x86_64' },
  aarch64: { debian: 'arm64', qemu: 'aarch64' },
  ppc64le: { debian: 'ppc64el', qemu: 'ppc64le' },
  s390x: { debian: 's390x', qemu: 's390x' },
};

/** The file in a root's folder (outside its /usr and /etc, so sandboxes never see it) that says what it is. */
export const ROOT_INFO = 'lenix-root.json';

/** What a root is made of: Debian release, mirror, the packages asked for (their dependencies come along). */
export const ROOT_RECIPE = {
  suite: 'bookworm',
  variant: 'minbase',
  packages: ['rpm', 'gcc', 'libc6-dev', 'make', 'file', 'bash', 'debugedit', 'patch', 'xz-utils'],
} as const;

const RootInfo = z.object({
  arch: z.string().regex(/^[A-Za-z0-9_]+$/),
  debianArch: z.string(),
  suite: z.string(),
  mirror: z.string(),
  packages: z.array(z.string()),
  createdAt: z.string(),
});
export type SystemRootInfo = z.infer<typeof RootInfo>;

export interface SystemRoot {
  readonly dir: string;
  readonly info: SystemRootInfo;
}

/** Read and check a root made by `lenix node root create`; a coded error saying what is wrong otherwise. */
export async function openSystemRoot(dir: string): Promise<SystemRoot> {
  const abs = path.resolve(dir);
  const text = await readFile(path.join(abs, ROOT_INFO), 'utf8').catch(() => null);
  if (text === null)
    throw new LenixError(
      'SYSTEM_ROOT_INVALID',
      `${abs} is not a Lenix system root (no ${ROOT_INFO}; make one with lenix node root create)`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LenixError('SYSTEM_ROOT_INVALID', `${path.join(abs, ROOT_INFO)} is not JSON`);
  }
  const info = RootInfo.safeParse(parsed);
  if (!info.success)
    throw new LenixError('SYSTEM_ROOT_INVALID', `${path.join(abs, ROOT_INFO)} is not a root description`);
  for (const need of ['usr/bin/rpmbuild', 'usr/bin/bash', 'etc'])
    if (!existsSync(path.join(abs, need)))
      throw new LenixError('SYSTEM_ROOT_INVALID', `the root ${abs} has no /${need}`);
  return { dir: abs, info: info.data };
}

/**
 * Whether the sandbox user can read the root (bubblewrap binds it as that user): a root inside a private folder
 * (a data folder of mode 0700) cannot be used. The reason when not, null when it can.
 */
export async function rootAccessProblem(root: SystemRoot, asSandboxUser: readonly string[]): Promise<string | null> {
  const probe = path.join(root.dir, 'usr/bin/rpmbuild');
  const [cmd, ...args] = [...asSandboxUser, 'test', '-r', probe];
  const ok = await run(cmd!, args, { timeout: 10_000 }).then(
    () => true,
    () => false,
  );
  return ok
    ? null
    : `the sandbox user cannot read ${probe}: every folder above the root must be open to it (not inside a private data folder)`;
}

/** Whether programs of `arch` run here: natively, or through an enabled qemu handler with the F flag. */
export async function emulationProblem(arch: string): Promise<string | null> {
  if (arch === hostArch()) return null;
  const known = ROOT_ARCHES[arch];
  if (!known) return `no emulator is known for ${arch}`;
  const handler = `/proc/sys/fs/binfmt_misc/qemu-${known.qemu}`;
  const text = await readFile(handler, 'utf8').catch(() => null);
  if (text === null)
    return existsSync('/proc/sys/fs/binfmt_misc/register')
      ? `no binfmt_misc handler qemu-${known.qemu} (install qemu-user-static and binfmt-support; scripts/bootstrap.sh does)`
      : 'binfmt_misc is not mounted (as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; scripts/bootstrap.sh does)';
  if (!/^enabled$/m.test(text))
    return `the binfmt_misc handler qemu-${known.qemu} is disabled (update-binfmts --enable qemu-${known.qemu})`;
  const flags = /^flags:\s*(\S*)/m.exec(text)?.[1] ?? '';
  if (!flags.includes('F'))
    return `the binfmt_misc handler qemu-${known.qemu} lacks the F flag (the sandbox has no emulator inside): use qemu-user-static's handlers`;
  return null;
}

/** The emulator's own version line, for the buildroot record (null when native). */
async function emulatorVersion(arch: string): Promise<string | null> {
  if (arch === hostArch()) return null;
  const known = ROOT_ARCHES[arch];
  if (!known) return null;
  for (const bin of [`qemu-${known.qemu}-static`, `qemu-${known.qemu}`]) {
    const out = await run(bin, ['--version'], { timeout: 10_000 }).catch(() => null);
    if (out) return out.stdout.split('\n')[0]!.trim();
  }
  return 'qemu-user';
}

/** Every Debian package of the root with its version (from the root's own dpkg database, nothing run inside). */
export async function rootPackages(dir: string): Promise<{ name: string; version: string }[]> {
  const { stdout } = await run(
    'dpkg-query',
    [
      `--admindir=${path.join(dir, 'var/lib/dpkg')}`,
      '-W',
      '-f', // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
      '${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\\n',
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter((p) => p.length >= 3 && p[2] === 'ii')
    .map(([name, version]) => ({ name: name!, version: version! }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The buildroot record of builds in a system root: its OS, every package in it, the emulator. */
export async function describeSystemRoot(root: SystemRoot): Promise<BuildrootRecord> {
  const packages = await rootPackages(root.dir);
  const version = (name: string) =>
    packages.find((p) => p.name === name || p.name.startsWith(`${name}:`))?.version ?? null;
  const osText = await readFile(path.join(root.dir, 'usr/lib/os-release'), 'utf8').catch(() => '');
  const osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osText)?.[1] ?? 'unknown';
  const emulator = await emulatorVersion(root.info.arch);
  const bwrap = await run('bwrap', ['--version']).then(
    (r) => r.stdout.trim(),
    () => null,
  );
  const tools: Record<string, string> = {};
  for (const [tool, pkg] of [
    ['rpm', 'rpm'],
    ['rpmbuild', 'rpm'],
    ['gcc', 'gcc'],
    ['make', 'make'],
    ['bash', 'bash'],
    ['tar', 'tar'],
  ] as const) {
    const v = version(pkg);
    if (v) tools[tool] = `${tool} ${v} (Debian ${pkg} ${root.info.debianArch})`;
  }
  if (bwrap) tools['bwrap'] = bwrap;
  if (emulator) tools['emulator'] = emulator;
  return {
    hostOs: `${osName} ${root.info.arch} root (${root.dir})`,
    kernel: os.release(),
    arch: root.info.arch,
    tools,
    packageManager: 'dpkg',
    packages,
    sandbox: `bubblewrap as an unprivileged user: user, PID, network, IPC and UTS namespaces; /usr and a generated /etc from the ${root.info.arch} system root, read-only${emulator ? `, its programs run by ${emulator} (binfmt_misc)` : ''}; a size-limited tmpfs work folder`,
  };
}
