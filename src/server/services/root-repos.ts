import { LenixError } from '../../core/errors.js';
import type {
  BuildTargetPayload,
  InstalledPackage,
  PlatformPayload,
  RootRepo,
  TestTaskPayload,
} from '../../core/protocol.js';
import { platformOf } from '../../rpm/platforms.js';
import { activeKeys } from '../../release/publisher.js';
import type { BuildRecord } from '../../store/records.js';
import type { ReleaseStore } from '../../store/release-store.js';
import type { TargetStore } from '../../store/target-store.js';

/**
 * The repositories a root is installed from, each at its current snapshot: the packages for one arch (noarch
 * included), addressed by digest, and the repository's active keys for gpgcheck. A repository with nothing
 * published yet is listed empty.
 */
export async function rootRepos(
  releases: Pick<ReleaseStore, 'getRepoByName' | 'getSnapshot'>,
  names: readonly string[],
  arch: string,
): Promise<RootRepo[]> {
  const out: RootRepo[] = [];
  for (const name of names) {
    const repo = await releases.getRepoByName(name);
    if (!repo) continue;
    const snap = repo.currentSnapshotId === null ? null : await releases.getSnapshot(repo.currentSnapshotId);
    const tree = repo.arches.includes(arch) ? arch : (repo.arches[0] ?? arch);
    const seen = new Set<string>();
    const packages = (snap?.packages ?? [])
      .filter((p) => p.arch === tree && !seen.has(p.sha256) && seen.add(p.sha256))
      .map((p) => ({
        sha256: p.sha256,
        name: p.name,
        url: `/api/v1/artifacts/${p.sha256}`,
        kind: 'rpm' as const,
        arch: p.arch,
      }));
    out.push({
      name: repo.name,
      snapshotId: snap?.id ?? null,
      packages,
      keyUrls: activeKeys(repo).map((k) => `/keys/${k}.asc`),
    });
  }
  return out;
}

/** A platform as tasks receive it (null: none). */
export function platformPayload(name: string | null): PlatformPayload | null {
  if (name === null) return null;
  const p = platformOf(name);
  return { name: p.name, package: p.package, macros: p.macros };
}

/** What a build task of a target needs: its macros, and for binary tasks the buildroot's repositories. */
export async function targetPayload(
  stores: { releases: Pick<ReleaseStore, 'getRepoByName' | 'getSnapshot'>; targets: Pick<TargetStore, 'get'> },
  build: BuildRecord,
  task: { kind: string; arch: string },
): Promise<BuildTargetPayload | null> {
  const target = build.targetId === null ? null : await stores.targets.get(build.targetId);
  if (!target) return null;
  const arch = task.arch === 'noarch' || task.arch === 'src' ? (build.arches[0] ?? 'noarch') : task.arch;
  return {
    name: target.name,
    macros: target.macros,
    repos:
      task.kind === 'binary' ? await rootRepos(stores.releases, [target.buildRepo, ...target.fromRepos], arch) : [],
    external:
      task.kind === 'binary' ? target.externalRepos.map((e) => ({ url: e.url, keyUrl: `/keys/${e.key}.asc` })) : [],
    platform: platformPayload(target.platform),
  };
}

/**
 * A test root's repositories besides the build's own packages: the repository the build is meant for (its
 * current snapshot, so dependencies on packages released there resolve) and, for a build of a target, the
 * target's build and other repositories.
 */
export async function testRepos(
  stores: { releases: Pick<ReleaseStore, 'getRepoByName' | 'getSnapshot'>; targets: Pick<TargetStore, 'get'> },
  build: BuildRecord,
): Promise<Pick<TestTaskPayload, 'target' | 'buildRepos'>> {
  const arch = build.arches[0] ?? 'noarch';
  const [release] = build.targetRepo ? await rootRepos(stores.releases, [build.targetRepo], arch) : [];
  const t = build.targetId === null ? null : await stores.targets.get(build.targetId);
  return {
    target:
      release && release.snapshotId !== null
        ? { name: release.name, packages: release.packages, keyUrls: release.keyUrls }
        : null,
    buildRepos: t ? await rootRepos(stores.releases, [t.buildRepo, ...t.fromRepos], arch) : [],
  };
}

/**
 * The server does not take a node's word for what its buildroot held: every package the record says came
 * from a repository must be in that repository's snapshot under that digest, and the repository must be one
 * of the build target's.
 */
export async function checkInstalled(
  releases: Pick<ReleaseStore, 'getRepoByName' | 'getSnapshot'>,
  repos: readonly string[],
  installed: readonly InstalledPackage[],
  external: readonly string[] = [],
): Promise<void> {
  const snapshots = new Map<string, Set<string>>();
  for (const p of installed) {
    // The host base, and packages of repositories outside Lenix (their signatures were checked by dnf).
    if (p.repo === 'host' || (external.includes(p.repo) && p.snapshotId === null)) continue;
    const key = `${p.repo}@${p.snapshotId}`;
    let shas = snapshots.get(key);
    if (!shas) {
      const repo = repos.includes(p.repo) ? await releases.getRepoByName(p.repo) : null;
      const snap = repo && p.snapshotId !== null ? await releases.getSnapshot(p.snapshotId) : null;
      shas = new Set(snap && snap.repoId === repo?.id ? snap.packages.map((x) => x.sha256) : []);
      snapshots.set(key, shas);
    }
    if (!shas.has(p.sha256))
      throw new LenixError(
        'BAD_REQUEST',
        `the buildroot record names ${p.nevra.slice(0, 200)} (${p.sha256.slice(0, 12)}…) from ${p.repo.slice(0, 64)} snapshot ${p.snapshotId}, which that snapshot does not hold`,
      );
  }
}
