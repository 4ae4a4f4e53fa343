import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type BuildTargetPayload, PLATFORM_MACROS } from '../../core/protocol.js';

/**
 * rpmbuild arguments that load the target's platform macros from the task's input folder (`input`, seen inside
 * as `inside`): for the SRPM task, and for the build of the platform package itself (its buildroot cannot
 * install it). Other binary builds get them from the platform package installed in the buildroot.
 */
export async function platformArgs(
  target: BuildTargetPayload | null | undefined,
  input: string,
  inside: string,
): Promise<string[]> {
  if (!target?.platform) return [];
  await writeFile(path.join(input, PLATFORM_MACROS), target.platform.macros);
  return ['--load', `${inside}/${PLATFORM_MACROS}`];
}

/** What a buildroot installs before the BuildRequires: the platform package, unless it is the one being built. */
export function platformPackages(target: BuildTargetPayload | null | undefined, building: string): string[] {
  const p = target?.platform;
  return p && p.package !== building ? [p.package] : [];
}
