import { readFile } from 'node:fs/promises';

/**
 * x86-64 micro-architecture levels (x86_64_v2 … v4) as build flavours of an x86_64 node, as AlmaLinux builds
 * x86_64_v2 for EL10 (`rpmbuild --target x86_64_v2`).
 *
 * rpm learned the levels in 4.19 (commit cd46c170: rpmrc arch table lines, `%x86_64` listing them, and
 * platform macro folders). Debian 12's rpm 4.18 has none of it: `--target x86_64_v2` there writes a package
 * with plain `-O2 -g`, an unexpanded %{_target_platform} and /usr/lib as %{_libdir}. For such an rpm the node
 * supplies the same things from the sandbox's input folder: the six rpmrc lines per level (`--rcfile`, with
 * `-mneeded` added to 4.19's optflags) and a platform macro file for the level, made from the host's x86_64 one
 * with the same flags in its %optflags (`--macros`, placed where rpm reads platform macros). `-mneeded` records the level in each
 * binary's GNU property note ("x86 ISA needed"), which the arch truth check reads (elf-arch.ts).
 */

export const X86_64_LEVELS = ['x86_64_v2', 'x86_64_v3', 'x86_64_v4'] as const;
export type X86Level = (typeof X86_64_LEVELS)[number];

export function isX86Level(arch: string): arch is X86Level {
  return (X86_64_LEVELS as readonly string[]).includes(arch);
}

/** The level's number: 2 for x86_64_v2. */
export const levelOf = (arch: X86Level): number => Number(arch.slice(-1));

/**
 * rpm 4.19's rpmrc lines for the levels (rpmrc.in): flags, colour, canonical name, compatibility chain. The
 * optflags add `-mneeded` (rpm's rpmrc optflags win over platform macros, so it goes here too).
 */
export function levelsRpmrc(): string {
  return X86_64_LEVELS.map((l) => {
    const n = levelOf(l);
    const below = [4, 3, 2].filter((k) => k < n).map((k) => `x86_64_v${k}`);
    return [
      `optflags: ${l} -O2 -g -march=x86-64-v${n} -mneeded`,
      `archcolor: ${l} 2`,
      `arch_canon:\t${l}:\t${l}\t1`,
      `buildarchtranslate: ${l}: x86_64`,
      `arch_compat: ${l}: ${[...below, 'x86_64', 'amd64', 'em64t', 'athlon', 'noarch'].join(' ')}`,
      `buildarch_compat: ${l}: ${below[0] ?? 'x86_64'}`,
    ]
      .map((line) => `${line}\n`)
      .join('');
  }).join('');
}

/** A level's platform macros: the host's x86_64 ones with the level's -march and -mneeded in %optflags. */
export function levelMacros(x86_64Platform: string, level: X86Level): string {
  let optflags = false;
  const lines = x86_64Platform.split('\n').map((line) => {
    const m = /^%optflags\s+(.*)$/.exec(line);
    if (!m) return line;
    optflags = true;
    return `%optflags\t\t${m[1]} -march=x86-64-v${levelOf(level)} -mneeded`;
  });
  if (!optflags) lines.push(`%optflags\t\t-O2 -g -march=x86-64-v${levelOf(level)} -mneeded`);
  lines.push('%x86_64\tx86_64 x86_64_v2 x86_64_v3 x86_64_v4 amd64 em64t');
  return `${lines.join('\n')}\n`;
}

/** Whether this rpm knows the levels (4.19 and later): its platform string for x86_64_v2 is expanded. */
export function knowsLevels(evalTargetPlatform: string): boolean {
  return !evalTargetPlatform.includes('%{');
}

/** The host's x86_64 platform macros, where rpm keeps them. */
export async function hostX86_64Platform(rpmConfigDir = '/usr/lib/rpm'): Promise<string> {
  return readFile(`${rpmConfigDir}/platform/x86_64-linux/macros`, 'utf8');
}

/**
 * rpm's macro path with the level's platform file read right after the platform folder's (so /etc/rpm and
 * ~/.rpmmacros still override it), from `rpm --showrc`'s "Macro path:" line.
 */
export function macroPathWith(showrcMacroPath: string, levelMacrosFile: string): string {
  const parts = showrcMacroPath.split(':');
  const at = parts.findIndex((p) => p.includes('/platform/'));
  parts.splice(at < 0 ? parts.length : at + 1, 0, levelMacrosFile);
  return parts.join(':');
}
