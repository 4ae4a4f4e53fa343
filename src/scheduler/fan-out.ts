/**
 * Which binary tasks an SRPM fans out into. rpm's own rules (build/parseSpec.c, build/build.c):
 * `BuildArch: noarch` builds once, on any node; otherwise one task per target architecture, keeping only
 * those in ExclusiveArch (when present) and dropping those in ExcludeArch.
 */
export interface SrpmArchInfo {
  readonly buildArchs: readonly string[]; // BuildArch(s) of the main package; empty means "the node's arch"
  readonly exclusiveArch: readonly string[];
  readonly excludeArch: readonly string[];
}

export type FanOut =
  | { readonly kind: 'tasks'; readonly arches: readonly string[] }
  | { readonly kind: 'excluded'; readonly reason: string };

/**
 * The ExclusiveArch/ExcludeArch entries that name a target architecture (macros.d %ix86 etc.). The x86-64
 * levels are flavours of x86_64, as in ALBS (albs-node base_rpm_builder.is_build_excluded): `ExclusiveArch:
 * x86_64` admits x86_64_v2 and `ExcludeArch: x86_64` excludes it, while `ExcludeArch: x86_64_v2` leaves plain
 * x86_64 alone and `ExclusiveArch: x86_64_v2` does not admit it. rpm ≥ 4.19's %{x86_64} lists every level.
 */
const X86_64 = ['x86_64', 'amd64', '%{x86_64}'];
const ARCH_ALIASES: Readonly<Record<string, readonly string[]>> = {
  x86_64: X86_64,
  x86_64_v2: ['x86_64_v2', ...X86_64],
  x86_64_v3: ['x86_64_v3', ...X86_64],
  x86_64_v4: ['x86_64_v4', ...X86_64],
  i686: ['i686', 'i386', 'i486', 'i586', '%{ix86}'],
  aarch64: ['aarch64', 'arm64', '%{arm64}'],
  ppc64le: ['ppc64le', '%{power64}'],
  s390x: ['s390x'],
  riscv64: ['riscv64'],
};

function matches(arch: string, list: readonly string[]): boolean {
  const names = ARCH_ALIASES[arch] ?? [arch];
  return list.some((entry) => names.includes(entry));
}

export function planFanOut(info: SrpmArchInfo, targetArches: readonly string[]): FanOut {
  const buildsNoarch = info.buildArchs.length > 0 && info.buildArchs.every((a) => a === 'noarch');
  if (buildsNoarch) {
    if (
      info.exclusiveArch.length > 0 &&
      !info.exclusiveArch.includes('noarch') &&
      !targetArches.some((a) => matches(a, info.exclusiveArch))
    ) {
      return {
        kind: 'excluded',
        reason: `ExclusiveArch ${info.exclusiveArch.join(' ')} matches no target architecture`,
      };
    }
    return { kind: 'tasks', arches: ['noarch'] };
  }
  const unique = [...new Set(targetArches)].filter((a) => a !== 'noarch');
  const arches = unique.filter(
    (a) => (info.exclusiveArch.length === 0 || matches(a, info.exclusiveArch)) && !matches(a, info.excludeArch),
  );
  if (arches.length === 0) {
    return {
      kind: 'excluded',
      reason: `no target architecture (${unique.join(', ') || 'none'}) is allowed by ExclusiveArch/ExcludeArch`,
    };
  }
  return { kind: 'tasks', arches };
}
