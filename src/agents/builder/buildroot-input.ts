import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, link, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildTargetPayload, InstalledPackage } from '../../core/protocol.js';
import { packageInfo, readRpmFileHeader } from '../../rpm/header.js';
import { SANDBOX_WORK } from '../../rpm/sandbox.js';
import type { ApiClient } from '../../client/http.js';
import { sha256File } from '../../store/durable.js';
import { downloadExternal, repomdDigest } from './external-repos.js';
import { cachedPackage, placeRepo } from '../kit/local-repo.js';
import { rpmLibdir } from '../kit/usr-folders.js';
import { nevraOf, sourceName, type Origin } from './origins.js';

import { ROOT_DNF_CONF } from '../kit/root-script.js';
import { INSTALLED_LIST, ROOT_CACHE, buildrootScript } from './buildroot-script.js';

/** What a cached root holds: NEVRA, digest and repository of each installed package, written when it was made. */
type Manifest = readonly { readonly nevra: string; readonly sha256: string; readonly repo?: string }[];

/** What the node prepared for one buildroot build, and how to read back what the sandbox reports. */
export interface PreparedBuildroot {
  /** Environment of the buildroot script. */
  readonly env: Readonly<Record<string, string>>;
  /** Whether the root comes from the node's cache. */
  readonly cached: boolean;
  /** Packages the repositories offered, by digest. */
  readonly origins: ReadonlyMap<string, Origin>;
  /** The cache file a new root is kept in (when not cached), and the manifest of a cached one. */
  readonly cacheFile: string;
  readonly manifest: Manifest | null;
}

/** Roots kept per node (least recently used go first). */
const CACHED_ROOTS = 8;

/**
 * Fill the sandbox's input folder for a build in a buildroot: the target's repositories (each package
 * downloaded once into the node's digest cache and verified), their keys, the host-base repository, dnf's
 * configuration, the script and its arguments, and a cached root when one matches (target, repository
 * snapshots, BuildRequires and host base).
 */
export async function prepareBuildroot(o: {
  api: ApiClient;
  workRoot: string;
  input: string;
  target: BuildTargetPayload;
  hostBase: string;
  /** The list of the sandbox's /usr folders (kit/usr-folders.ts) for the root's skeleton. */
  usrFolders: string;
  buildRequires: readonly string[];
  rpmbuildArgs: readonly string[];
  buildEnv: Readonly<Record<string, string>>;
  srpmName: string;
  /** The name of the source package being built. */
  sourceName: string;
  dynamic: boolean;
  buildUid: number;
  say: (line: string) => void;
}): Promise<PreparedBuildroot> {
  const cache = path.join(o.workRoot, 'cache');
  await mkdir(cache, { recursive: true });
  const origins = new Map<string, Origin>();
  for (const repo of o.target.repos) {
    for (const p of repo.packages) {
      const info = packageInfo(await readRpmFileHeader(await cachedPackage(o.api, cache, p)));
      origins.set(p.sha256, {
        sha256: p.sha256,
        nevra: nevraOf(info),
        repo: repo.name,
        snapshotId: repo.snapshotId,
        source: sourceName(info.sourceRpm),
      });
    }
    o.say(`buildroot repository ${repo.name}: snapshot ${repo.snapshotId ?? 'none'}, ${repo.packages.length} packages`);
  }
  const hostBaseRpm = (await readdir(o.hostBase)).find((f) => f.endsWith('.rpm'));
  if (hostBaseRpm) {
    const file = path.join(o.hostBase, hostBaseRpm);
    const sha256 = await sha256File(file);
    origins.set(sha256, {
      sha256,
      nevra: nevraOf(packageInfo(await readRpmFileHeader(file))),
      repo: 'host',
      snapshotId: null,
      source: null,
    });
  }

  // Repositories outside Lenix are known by their signed repomd.xml (dnf checks its signature when it is used).
  const external = o.target.external ?? [];
  const externalIds: (string | null)[] = [];
  for (const e of external) externalIds.push(await repomdDigest(e.url));

  // The same repository contents, BuildRequires and host base give the same root: keep it for the next build.
  // Contents, not snapshot ids (a snapshot that republishes the same packages changes nothing), and without
  // the packages of the source being built (each of its builds lands a new copy in the build repository). A
  // cached root is used only while every package it holds is still offered, byte for byte.
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        target: o.target.name,
        packages: [...origins.values()]
          .filter((p) => p.source !== o.sourceName)
          .map((p) => p.sha256)
          .sort(),
        buildRequires: [...o.buildRequires].sort(),
        external: external.map((e, i) => [e.url, externalIds[i]]),
      }),
    )
    .digest('hex');
  const roots = path.join(o.workRoot, 'roots');
  await mkdir(roots, { recursive: true });
  const cacheFile = path.join(roots, `${key}.tar`);
  let manifest: Manifest | null = existsSync(cacheFile)
    ? await readFile(`${cacheFile}.json`, 'utf8').then(
        (t) => JSON.parse(t) as Manifest,
        () => null,
      )
    : null;
  const externalUrls = external.map((e) => e.url);
  const offered = (p: Manifest[number]) =>
    origins.has(p.sha256) || (p.repo !== undefined && externalUrls.includes(p.repo));
  if (manifest && (externalIds.includes(null) || !manifest.every(offered))) {
    o.say('the cached root holds packages the repositories no longer offer: making a new one');
    manifest = null;
  }
  if (manifest) {
    await link(cacheFile, path.join(o.input, ROOT_CACHE)).catch(() =>
      copyFile(cacheFile, path.join(o.input, ROOT_CACHE)),
    );
    const now = new Date();
    await utimes(cacheFile, now, now);
  }
  const cached = manifest !== null;
  for (const p of manifest ?? [])
    if (!origins.has(p.sha256) && p.repo)
      origins.set(p.sha256, { sha256: p.sha256, nevra: p.nevra, repo: p.repo, snapshotId: null, source: null });
  // dnf runs only for a new root or for %generate_buildrequires: only then do the repositories go in.
  if (!cached || o.dynamic) {
    const extra = external.length > 0 ? await downloadExternal(o, cache, origins) : [];
    await placeRepositories(o, cache, extra);
  }
  await writeFile(path.join(o.input, 'buildroot.sh'), buildrootScript());
  await copyFile(o.usrFolders, path.join(o.input, 'usr-folders'));
  await writeFile(path.join(o.input, 'buildrequires'), o.buildRequires.map((r) => `${r}\n`).join(''));
  await writeFile(path.join(o.input, 'rpmbuild.args'), o.rpmbuildArgs.map((a) => `${a}\0`).join(''));
  await writeFile(
    path.join(o.input, 'build.env'),
    Object.entries(o.buildEnv)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
  );
  return {
    env: {
      SRPM: o.srpmName,
      BUILD_UID: String(o.buildUid),
      DYNAMIC: o.dynamic ? '1' : '',
      USR_FOLDERS: `${SANDBOX_WORK}/in/usr-folders`,
      RPM_LIBDIR: await rpmLibdir(),
      SAVE_CACHE: cached ? '' : '1',
    },
    cached,
    origins,
    cacheFile,
    manifest,
  };
}

/** The repositories for dnf in the sandbox: packages from the digest cache, keys, the host base, the .repo file. */
async function placeRepositories(
  o: { api: ApiClient; input: string; target: BuildTargetPayload; hostBase: string },
  cache: string,
  extra: readonly string[],
): Promise<void> {
  const inside = (f: string) => `${SANDBOX_WORK}/in/${f}`;
  const repoFile: string[] = [];
  for (const [i, repo] of o.target.repos.entries())
    repoFile.push(
      ...(await placeRepo({ api: o.api, input: o.input, cache }, repo, { id: String(i), dir: `repos/${i}` })),
    );
  repoFile.push(...extra);
  await cp(o.hostBase, path.join(o.input, 'host-base'), { recursive: true });
  repoFile.push(
    '[lenix-host-base]',
    'name=What the host offers',
    `baseurl=file://${inside('host-base')}`,
    'gpgcheck=0',
    '',
  );
  await mkdir(path.join(o.input, 'repos.d'));
  await writeFile(path.join(o.input, 'repos.d', 'lenix-buildroot.repo'), repoFile.join('\n'));
  await writeFile(path.join(o.input, 'dnf.conf'), ROOT_DNF_CONF);
}

/**
 * The buildroot's packages as the sandbox listed them, each matched to the repository snapshot it came from: by
 * the cached root's manifest when there is one, else by NEVRA among the packages the repositories offered.
 */
export async function readInstalled(
  out: string,
  b: Pick<PreparedBuildroot, 'origins' | 'manifest'>,
): Promise<{ installed: InstalledPackage[]; unknown: string[] }> {
  // A cached root is not listed again: its manifest was made from the same list when it was saved.
  const text = await readFile(path.join(out, INSTALLED_LIST), 'utf8').catch(() => null);
  const nevras =
    text === null
      ? (b.manifest ?? []).map((m) => m.nevra)
      : text.split('\n').flatMap((line) => {
          const [name, epoch, version, release, arch] = line.split('\t');
          if (!name || !version || !release || !arch) return [];
          const e = epoch && epoch !== '(none)' ? Number(epoch) : null;
          return [nevraOf({ name, epoch: e, version, release, arch })];
        });
  const byNevra = new Map<string, string>();
  for (const o of b.origins.values()) byNevra.set(o.nevra, o.sha256);
  for (const m of b.manifest ?? []) byNevra.set(m.nevra, m.sha256);
  const installed: InstalledPackage[] = [];
  const unknown: string[] = [];
  for (const nevra of nevras) {
    const origin = b.origins.get(byNevra.get(nevra) ?? '');
    if (origin) installed.push({ nevra, sha256: origin.sha256, repo: origin.repo, snapshotId: origin.snapshotId });
    else unknown.push(nevra);
  }
  return { installed: installed.sort((x, y) => x.nevra.localeCompare(y.nevra)), unknown };
}

/** Keep a freshly made root for the next build with the same inputs; drop the least recently used beyond the limit. */
export async function keepRoot(out: string, cacheFile: string, installed: readonly InstalledPackage[]): Promise<void> {
  const made = path.join(out, ROOT_CACHE);
  if (!existsSync(made)) return;
  const manifest: Manifest = installed.map((p) => ({ nevra: p.nevra, sha256: p.sha256, repo: p.repo }));
  await writeFile(`${cacheFile}.json`, JSON.stringify(manifest));
  await rename(made, cacheFile);
  const dir = path.dirname(cacheFile);
  const files = await Promise.all(
    (await readdir(dir))
      .filter((f) => f.endsWith('.tar'))
      .map(async (f) => ({ f, at: (await stat(path.join(dir, f))).mtimeMs })),
  );
  for (const { f } of files.sort((a, b) => b.at - a.at).slice(CACHED_ROOTS))
    await rm(path.join(dir, f), { force: true });
}
