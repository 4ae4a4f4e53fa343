import path from 'node:path';
import { LenixError } from '../../core/errors.js';
import { describeElf, ELF_OF_ARCH, inspectElf, type PayloadLimits } from '../../rpm/elf-arch.js';
import { packageInfo, readRpmFileHeader } from '../../rpm/header.js';

/**
 * The arch truth check: each package is of the task's arch (or noarch), and its executables and shared
 * libraries are ELF of that arch (elf-arch.ts), read within `limits` (the packages are the build's making). The
 * first problem found, or null; a payload that cannot be read within the limits is such a problem.
 */
export async function archTruth(
  out: string,
  files: readonly string[],
  arch: string,
  say: (line: string) => void,
  limits: PayloadLimits,
): Promise<string | null> {
  for (const f of files) {
    const file = path.join(out, f);
    const got = packageInfo(await readRpmFileHeader(file)).arch;
    if (got !== arch && got !== 'noarch') return `${f} is a ${got} package, built by a task for ${arch}`;
    const report = await inspectElf(file, got, limits).catch((err: unknown) => {
      if (err instanceof LenixError) return `${f}: its payload could not be checked: ${err.message}`;
      throw err;
    });
    if (typeof report === 'string') return report;
    const wrong = report.mismatches;
    if (wrong.length > 0) {
      const shown = wrong
        .slice(0, 5)
        .map((w) => `${w.path} (${w.needsLevel ? `needs x86-64-v${w.needsLevel}` : describeElf(w.found)})`);
      const more = wrong.length > 5 ? ` and ${wrong.length - 5} more` : '';
      return `${f} holds files not built for ${got} (${describeElf(ELF_OF_ARCH[got]!)}): ${shown.join(', ')}${more}`;
    }
    if (report.levelMarked + report.levelUnmarked.length > 0)
      say(
        `${f}: ${report.levelMarked} binaries marked ${got.replace('x86_64_', 'x86-64-')}${report.levelUnmarked.length > 0 ? `; not marked (built without the level's flags?): ${report.levelUnmarked.slice(0, 5).join(', ')}` : ''}`,
      );
  }
  return null;
}
