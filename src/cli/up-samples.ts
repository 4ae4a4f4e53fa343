import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LenixClient } from '../client/lenix.js';
import { hostArch } from '../rpm/arch.js';
import { isX86Level } from '../rpm/x86-levels.js';

const run = promisify(execFile);
const SAMPLES = fileURLToPath(new URL('../../../samples/', import.meta.url));

/** The samples `lenix up` creates: a noarch data package, a C program, a package with a subpackage and a scriptlet. */
export const SAMPLE_NAMES = ['lenix-hello-data', 'hello-c', 'lenix-multi'] as const;
/** The repository `lenix up` publishes the samples into. */
export const SAMPLE_REPO = 'lenix';
/** The build target `lenix up` makes: its build repository is `lx9-build`, its releases go to SAMPLE_REPO. */
export const SAMPLE_TARGET = 'lx9';

/**
 * The samples of `lenix up`, once per data folder: sources, the sample repository, builds through signing and
 * tests, a release, and the errata demo. Later starts find them and keep them.
 */
export async function ensureSamples(
  admin: LenixClient,
  data: string,
  signingKey: string,
  testing: boolean,
  say: (line: string) => void,
  /** The sample repository's arches (made with them on first start; a restart keeps the repository as it is). */
  arches: readonly string[] = [hostArch()],
): Promise<void> {
  const { sources } = await admin.sources.list();
  const fresh: string[] = [];
  for (const name of SAMPLE_NAMES) {
    if (sources.some((s) => s.name === name)) continue;
    const repo = await createSampleRepo(name, path.join(data, 'samples', name));
    await admin.sources.add({ name, url: repo, branch: 'main' });
    fresh.push(name);
  }
  const { repos } = await admin.repos.list();
  if (!repos.some((r) => r.name === SAMPLE_REPO)) {
    await admin.repos.create({ name: SAMPLE_REPO, arches: [...arches], keys: [signingKey] });
  }
  // The default build target: builds with --target lx9 install their BuildRequires from its build repository,
  // which every signed build of the target joins at once.
  const { targets } = await admin.targets.list();
  if (!targets.some((t) => t.name === SAMPLE_TARGET)) {
    await admin.targets.create({
      name: SAMPLE_TARGET,
      buildRepo: `${SAMPLE_TARGET}-build`,
      arches: [hostArch()],
      macros: { dist: '.lx9', rhel: '9' },
      releaseTo: SAMPLE_REPO,
    });
    say(
      `target ${SAMPLE_TARGET}: lenix build SRC --target ${SAMPLE_TARGET} installs BuildRequires from ${SAMPLE_TARGET}-build (%dist .lx9)`,
    );
  }
  if (fresh.length === 0) {
    say('samples: already present (builds, signatures and releases are kept across restarts)');
    return;
  }
  say(`samples: building, signing and testing ${fresh.join(', ')}`);
  const builds = [];
  for (const name of fresh) builds.push(await admin.builds.create({ source: name, repo: SAMPLE_REPO }));
  const done = [];
  for (const b of builds) {
    const built = await admin.builds.wait(b.id);
    const pipeline = built.state === 'succeeded' ? await waitForPipeline(admin, b.id, testing) : built;
    const stages = (pipeline.tasks ?? [])
      .filter((t) => t.kind === 'sign' || t.kind === 'test')
      .map((t) => `${t.kind} ${t.state}`);
    const files = (built.tasks ?? []).flatMap((t) => t.artifacts.filter((a) => a.kind === 'rpm').map((a) => a.name));
    say(
      `  build ${b.id} ${b.package}-${b.evr}: ${built.state}${built.reason ? ` (${built.reason})` : ''}; ${stages.join(', ')}  ${files.join(' ')}`,
    );
    const signed = (pipeline.tasks ?? []).some((t) => t.kind === 'sign' && t.state === 'succeeded');
    if ((pipeline.tasks ?? []).some((t) => t.kind === 'test' && t.state === 'succeeded') || (!testing && signed))
      done.push(b.id);
  }
  if (done.length === 0) return;
  const rel = await admin.releases.create({
    repo: SAMPLE_REPO,
    builds: done,
    approve: true,
    ...(!testing
      ? { override: 'lenix up without root: no tester ran' }
      : arches.some(isX86Level)
        ? { override: "x86-64 level packages: this host's rpm cannot install them, so they are untested" }
        : {}),
  });
  const published = await admin.releases.wait(rel.id);
  say(`  release ${rel.id} into ${SAMPLE_REPO}: ${published.state}${published.reason ? ` (${published.reason})` : ''}`);
  if (published.state === 'published') await errataDemo(admin, data, testing, say);
  say(
    `  dnf: curl -o /etc/yum.repos.d/${SAMPLE_REPO}.repo ${admin.base}/repos/${SAMPLE_REPO}.repo   (gpgcheck=1, repo_gpgcheck=1)`,
  );
}

/**
 * Errata at work: a second version of the noarch sample, released under a sample security advisory, so that
 * `dnf updateinfo list --security` on a client with 1.0 installed answers at once. Once per data folder.
 */
async function errataDemo(
  admin: LenixClient,
  data: string,
  testing: boolean,
  say: (line: string) => void,
): Promise<void> {
  const name = 'lenix-hello-data';
  const dir = path.join(data, 'samples', name);
  const specFile = path.join(dir, `${name}.spec`);
  const spec = await readFile(specFile, 'utf8');
  await writeFile(
    specFile,
    spec
      .replace(/^Version:(\s+)1\.0$/m, 'Version:$11.1')
      .replace(
        '%changelog\n',
        '%changelog\n* Wed Nov 25 2026 Lenix Samples <samples@lenix.invalid> - 1.1-1\n- Sample fix released under a sample security advisory\n\n',
      ),
  );
  await writeFile(
    path.join(dir, 'greeting.txt'),
    `${(await readFile(path.join(dir, 'greeting.txt'), 'utf8')).trimEnd()}\n(version 1.1)\n`,
  );
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Lenix Samples',
    GIT_AUTHOR_EMAIL: 'samples@lenix.invalid',
    GIT_COMMITTER_NAME: 'Lenix Samples',
    GIT_COMMITTER_EMAIL: 'samples@lenix.invalid',
    GIT_AUTHOR_DATE: '2026-11-25T13:00:00Z',
    GIT_COMMITTER_DATE: '2026-11-25T13:00:00Z',
  };
  await run('git', ['-c', 'commit.gpgsign=false', 'commit', '-q', '-a', '-m', `${name} 1.1: sample fix`], {
    cwd: dir,
    env,
  });
  const b = await admin.builds.create({ source: name, repo: SAMPLE_REPO });
  const built = await admin.builds.wait(b.id);
  const pipeline = built.state === 'succeeded' ? await waitForPipeline(admin, b.id, testing) : built;
  const ok = (pipeline.tasks ?? []).some((t) => t.kind === (testing ? 'test' : 'sign') && t.state === 'succeeded');
  say(`  build ${b.id} ${b.package}-${b.evr}: ${built.state}`);
  if (!ok) return;
  const adv = await admin.errata.create({
    repo: SAMPLE_REPO,
    type: 'security',
    severity: 'Moderate',
    title: `${name} sample security update`,
    synopsis: `Moderate: ${name} sample security update`,
    description:
      'A sample advisory made by lenix up to show errata at work: dnf updateinfo list --security lists it on a client with version 1.0, and dnf update --security applies it. It fixes no real vulnerability.',
    fromBuild: b.id,
  });
  await admin.errata.approve(adv.id);
  const rel = await admin.releases.create({
    repo: SAMPLE_REPO,
    builds: [b.id],
    approve: true,
    ...(testing ? {} : { override: 'lenix up without root: no tester ran' }),
  });
  const published = await admin.releases.wait(rel.id);
  say(
    `  release ${rel.id} into ${SAMPLE_REPO}: ${published.state}, with advisory ${adv.id} (security, Moderate) for ${name}-1.1-1`,
  );
  say(
    `  errata: dnf updateinfo list --security; ${admin.base}/errata/feed.atom; ${admin.base}/errata/oval/${SAMPLE_REPO}.xml`,
  );
}

/** Wait until a build's sign and test tasks have ended (they follow a successful build). */
async function waitForPipeline(api: LenixClient, id: number, testing: boolean) {
  for (;;) {
    const b = await api.builds.get(id);
    const tasks = b.tasks ?? [];
    const sign = tasks.filter((t) => t.kind === 'sign').pop();
    const test = tasks.filter((t) => t.kind === 'test').pop();
    const ended = (s?: string) => s === 'succeeded' || s === 'failed' || s === 'cancelled';
    if ((sign && ended(sign.state) && (sign.state !== 'succeeded' || !testing)) || (test && ended(test.state)))
      return b;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A sample as a local git repository with a fixed author and date, so its commits are the same everywhere. */
export async function createSampleRepo(name: string, dir: string): Promise<string> {
  if (existsSync(path.join(dir, '.git'))) return dir;
  await mkdir(dir, { recursive: true });
  await cp(path.join(SAMPLES, name), dir, { recursive: true });
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Lenix Samples',
    GIT_AUTHOR_EMAIL: 'samples@lenix.invalid',
    GIT_COMMITTER_NAME: 'Lenix Samples',
    GIT_COMMITTER_EMAIL: 'samples@lenix.invalid',
    GIT_AUTHOR_DATE: '2026-11-25T12:00:00Z',
    GIT_COMMITTER_DATE: '2026-11-25T12:00:00Z',
  };
  await run('git', ['init', '-q', '-b', 'main'], { cwd: dir, env });
  await run('git', ['add', '-A'], { cwd: dir, env });
  await run('git', ['-c', 'commit.gpgsign=false', 'commit', '-q', '-m', `${name}: sample package for Lenix`], {
    cwd: dir,
    env,
  });
  return dir;
}
