import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gitRepo } from './cli.js';

const run = promisify(execFile);
/** EL dist-git-style fixtures: an upstream tree and the spec that packages it (test/fixtures/el9/NAME/). */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/el9/', import.meta.url));
/** The platforms Lenix maintains (platforms/NAME/: spec and macro file). */
export const PLATFORMS = fileURLToPath(new URL('../../../platforms/', import.meta.url));

export interface ElFixture {
  /** The source (and package) name. */
  readonly name: string;
  /** The upstream tarball's file name and its folder inside. */
  readonly tarball: string;
  readonly topdir: string;
  /** Only noarch packages (no ELF files: no debuginfo). */
  readonly noarch?: boolean;
  /** Prepare the upstream tree as its release tarball has it (autoreconf for autotools). */
  readonly prepare?: (tree: string) => Promise<void>;
  /** Files of the dist-git repository besides the spec (patches under SOURCES/). */
  readonly extra?: (tree: string) => Promise<Record<string, string>>;
}

export const EL_FIXTURES: readonly ElFixture[] = [
  {
    name: 'elhello',
    tarball: 'elhello-1.0.tar.gz',
    topdir: 'elhello-1.0',
    // A release tarball of an autotools project carries its generated configure and Makefile.in.
    prepare: async (tree) => {
      await run('autoreconf', ['-fi'], { cwd: tree });
    },
  },
  { name: 'libelcalc', tarball: 'elcalc-1.2.0.tar.gz', topdir: 'elcalc-1.2.0' },
  { name: 'elmeson', tarball: 'elmeson-2.1.tar.gz', topdir: 'elmeson-2.1' },
  { name: 'python-elgreet', tarball: 'elgreet-0.5.tar.gz', topdir: 'elgreet-0.5', noarch: true },
  { name: 'eldaemon', tarball: 'eldaemon-1.4.tar.gz', topdir: 'eldaemon-1.4', noarch: true },
  {
    name: 'elauto',
    tarball: 'elauto-0.3.tar.gz',
    topdir: 'elauto-0.3',
    extra: async (tree) => {
      const patched = path.join(path.dirname(tree), 'b');
      await cp(tree, patched, { recursive: true });
      await writeFile(path.join(patched, 'greeting'), 'hello from a patched elauto\n');
      const diff = await run('diff', ['-u', 'a/greeting', 'b/greeting'], { cwd: path.dirname(tree) }).catch(
        (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
      );
      return { 'SOURCES/elauto-greeting.patch': diff.stdout };
    },
  },
];

/**
 * Make a fixture's upstream tarball (deterministic: sorted, fixed owner and time) in `work`, and return its path
 * and the dist-git files: SPECS/NAME.spec and the patches; the tarball itself goes to the lookaside area.
 */
export async function fixtureRelease(
  f: ElFixture,
  work: string,
): Promise<{ tarball: string; files: Record<string, string> }> {
  const stage = await mkdtemp(path.join(work, `${f.name}-`));
  const tree = path.join(stage, f.topdir);
  await cp(path.join(FIXTURES, f.name), tree, { recursive: true, filter: (p) => !p.endsWith('.spec') });
  // The patch is made against the tree as released (a/ and b/ beside it).
  await cp(tree, path.join(stage, 'a'), { recursive: true });
  await f.prepare?.(tree);
  const extra = f.extra ? await f.extra(path.join(stage, 'a')) : {};
  const tarball = path.join(work, f.tarball);
  await run('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=2026-11-30 00:00Z',
    '-czf',
    tarball,
    '-C',
    stage,
    f.topdir,
  ]);
  const spec = await readFile(path.join(FIXTURES, f.name, `${f.name}.spec`), 'utf8');
  await rm(stage, { recursive: true, force: true });
  return { tarball, files: { [`SPECS/${f.name}.spec`]: spec, ...extra } };
}

/** A git repository of the platform's package (its spec and macro file at the root), as a source to build. */
export async function platformRepo(name: string, repo: string): Promise<void> {
  const dir = path.join(PLATFORMS, name);
  const files: Record<string, string> = {};
  for (const f of [`lenix-platform-${name}.spec`, `macros.lenix-${name}`, `rpmrc.lenix-${name}`])
    files[f] = await readFile(path.join(dir, f), 'utf8');
  await mkdir(path.dirname(repo), { recursive: true });
  await gitRepo(repo, files, `lenix-platform-${name}`);
}
