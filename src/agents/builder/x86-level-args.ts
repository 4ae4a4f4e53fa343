import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  hostX86_64Platform,
  isX86Level,
  knowsLevels,
  levelMacros,
  levelsRpmrc,
  macroPathWith,
} from '../../rpm/x86-levels.js';

const run = promisify(execFile);

/** What the host's rpm needs for the levels: nothing (rpm ≥ 4.19), or its macro path to extend. */
let probed: Promise<{ knows: true } | { knows: false; macroPath: string }> | null = null;

function probe() {
  probed ??= (async () => {
    const platform = (await run('rpm', ['--target', 'x86_64_v2', '--eval', '%{_target_platform}'])).stdout;
    if (knowsLevels(platform)) return { knows: true as const };
    const showrc = (await run('rpm', ['--showrc'], { maxBuffer: 16 * 1024 * 1024 })).stdout;
    const macroPath = /^Macro path: (.+)$/m.exec(showrc)?.[1];
    if (!macroPath)
      throw new Error("rpm --showrc names no macro path: cannot add the x86-64 levels to this host's rpm");
    return { knows: false as const, macroPath };
  })();
  return probed;
}

/**
 * rpmbuild arguments that let the host's rpm build an x86-64 level (x86-levels.ts): none for other arches or an
 * rpm that knows the levels; else the rpmrc lines and the level's platform macros, written to the sandbox's
 * input folder `input` (seen inside as `inside`).
 */
export async function x86LevelArgs(arch: string, input: string, inside: string): Promise<string[]> {
  if (!isX86Level(arch)) return [];
  const p = await probe();
  if (p.knows) return [];
  await writeFile(path.join(input, 'x86-64-levels.rpmrc'), levelsRpmrc());
  await writeFile(path.join(input, `${arch}.macros`), levelMacros(await hostX86_64Platform(), arch));
  return [
    '--rcfile',
    `/usr/lib/rpm/rpmrc:${inside}/x86-64-levels.rpmrc`,
    '--macros',
    macroPathWith(p.macroPath, `${inside}/${arch}.macros`),
  ];
}
