import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ROOT_RECIPE } from '../../src/agents/kit/system-root.js';
import { processRuns } from '../../src/exec/exec.js';
import { lenix, until } from './cli.js';

/**
 * Foreign-architecture system roots for tests, made once by the real `lenix node root create` and kept between runs
 * of the suite (the issue allows it: making one takes minutes under emulation). The folder name carries the
 * recipe's digest, so a changed recipe makes new roots. LENIX_TEST_ROOTS moves the cache.
 */
export const ROOTS_CACHE = process.env['LENIX_TEST_ROOTS'] ?? '/var/cache/lenix-test/roots';

/** The emulated arches the suite builds and tests in (test/e2e-multiarch.test.ts). */
export const FOREIGN_ARCHES = ['aarch64', 'ppc64le', 's390x'] as const;

const recipeKey = createHash('sha256').update(JSON.stringify(ROOT_RECIPE)).digest('hex').slice(0, 12);

export function cachedRootDir(arch: string): string {
  return path.join(ROOTS_CACHE, `${arch}-${ROOT_RECIPE.suite}-${recipeKey}`);
}

/**
 * The roots of these arches, made where missing, all at once (their downloads and emulated second stages overlap on
 * two cores). A lock file per root keeps two test processes from making the same one.
 */
export async function cachedRoots(arches: readonly string[]): Promise<Record<string, string>> {
  await mkdir(ROOTS_CACHE, { recursive: true });
  const made = await Promise.all(arches.map(async (arch) => [arch, await cachedRoot(arch)] as const));
  return Object.fromEntries(made);
}

async function cachedRoot(arch: string): Promise<string> {
  const dir = cachedRootDir(arch);
  if (existsSync(path.join(dir, 'lenix-root.json'))) return dir;
  const lock = `${dir}.lock`;
  const handle = await until(
    `the lock of the ${arch} root`,
    async () => {
      const h = await open(lock, 'wx').catch(() => null);
      if (h) return h;
      // A lock left by a run that died (its process is gone) is taken over.
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (holder > 0 && !processRuns(holder)) await rm(lock, { force: true });
      return null;
    },
    30 * 60_000,
  );
  await handle.writeFile(String(process.pid));
  try {
    if (existsSync(path.join(dir, 'lenix-root.json'))) return dir;
    await rm(dir, { recursive: true, force: true });
    const r = await lenix(['node', 'root', 'create', '--arch', arch, dir], {});
    if (r.code !== 0)
      throw new Error(`lenix node root create --arch ${arch} exited ${r.code}: ${r.stderr.slice(-3000)}`);
    return dir;
  } finally {
    await handle.close();
    await rm(lock, { force: true });
  }
}
