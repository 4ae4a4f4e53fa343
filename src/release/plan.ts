import { LenixError } from '../core/errors.js';
import { compareEvr, parseNevra } from '../core/nevra.js';

/** One binary package as a repository holds it: which artifact, under which repository arch. */
export interface RepoPackage {
  readonly artifactId: number;
  readonly sha256: string;
  readonly name: string; // file name
  readonly arch: string; // the repository arch it is published under
  readonly nevra: string;
  readonly buildId: number;
  /** An imported package (buildId 0): the import record. */
  readonly importId?: number;
}

export interface CandidatePackage {
  readonly artifactId: number;
  readonly sha256: string;
  readonly name: string;
  readonly arch: string; // the package's own arch (noarch goes everywhere)
  readonly nevra: string;
  readonly buildId: number;
  readonly importId?: number;
}

export interface ReleasePlan {
  readonly packages: readonly RepoPackage[];
  readonly added: readonly RepoPackage[];
  readonly replaced: readonly { readonly from: RepoPackage; readonly to: RepoPackage }[];
  readonly unchanged: readonly RepoPackage[];
  readonly skipped: readonly { readonly name: string; readonly why: string }[];
}

/** Parsed keys of package records (a repository's records are reused between publishes: parse each once). */
const keys = new WeakMap<object, string>();
const key = (p: { nevra: string; arch: string }) => {
  let k = keys.get(p);
  if (k === undefined) {
    const n = parseNevra(p.nevra);
    k = `${p.arch}/${n.name}.${n.arch}`;
    keys.set(p, k);
  }
  return k;
};

/**
 * What a release changes in a repository (pure). Each new package goes under every repository arch it fits
 * (noarch under all of them); a package with the same name and arch replaces an older one; the same NEVRA
 * with the same bytes is unchanged; the same NEVRA with other bytes is refused, since dnf could not tell
 * the two apart (a build repository, `sameNevraReplaces`, takes the rebuild instead: Lenix's buildroots pick
 * packages by digest). Packages of the snapshot that nothing replaces stay.
 */
export function planRelease(
  current: readonly RepoPackage[],
  candidates: readonly CandidatePackage[],
  repoArches: readonly string[],
  opts: { readonly sameNevraReplaces?: boolean } = {},
): ReleasePlan {
  const byKey = new Map(current.map((p) => [key(p), p]));
  const added: RepoPackage[] = [];
  const replaced: { from: RepoPackage; to: RepoPackage }[] = [];
  const unchanged: RepoPackage[] = [];
  const skipped: { name: string; why: string }[] = [];
  const next = new Map(byKey);
  for (const c of candidates) {
    const arches = c.arch === 'noarch' ? repoArches : repoArches.filter((a) => a === c.arch);
    if (arches.length === 0) {
      skipped.push({ name: c.name, why: `arch ${c.arch} is not one of the repository's (${repoArches.join(', ')})` });
      continue;
    }
    for (const arch of arches) {
      const pkg: RepoPackage = {
        artifactId: c.artifactId,
        sha256: c.sha256,
        name: c.name,
        arch,
        nevra: c.nevra,
        buildId: c.buildId,
        ...(c.importId !== undefined ? { importId: c.importId } : {}),
      };
      const k = key(pkg);
      const old = next.get(k);
      if (!old) {
        added.push(pkg);
        next.set(k, pkg);
        continue;
      }
      if (old.nevra === pkg.nevra) {
        if (old.sha256 !== pkg.sha256 && opts.sameNevraReplaces) {
          // A build repository takes a rebuild of the same EVR (its buildroots install by digest).
          replaced.push({ from: old, to: pkg });
          next.set(k, pkg);
          continue;
        }
        if (old.sha256 !== pkg.sha256) {
          throw new LenixError(
            'RELEASE_CONFLICT',
            `${pkg.nevra} is already in the repository with other bytes (${old.sha256.slice(0, 12)}…); bump the release`,
          );
        }
        if (byKey.get(k) === old) unchanged.push(old);
        continue;
      }
      const cmp = compareEvr(parseNevra(pkg.nevra), parseNevra(old.nevra));
      if (cmp < 0) {
        skipped.push({ name: pkg.name, why: `older than ${old.nevra} already in ${arch}` });
        continue;
      }
      replaced.push({ from: old, to: pkg });
      next.set(k, pkg);
    }
  }
  const packages = [...next.values()].sort((a, b) => a.arch.localeCompare(b.arch) || a.name.localeCompare(b.name));
  return { packages, added, replaced, unchanged, skipped };
}

/**
 * What a release records of its plan: the changes, not the repository's whole package list (the snapshot holds
 * that), so a release into a 50,000-package repository is a small record.
 */
export function planRecord(plan: ReleasePlan) {
  return {
    added: plan.added,
    replaced: plan.replaced,
    skipped: plan.skipped,
    unchangedCount: plan.unchanged.length,
    packageCount: plan.packages.length,
  };
}
