import { LenixError } from '../core/errors.js';
import { compareEvr, parseNevra } from '../core/nevra.js';
import { byArchAndName } from '../core/ids.js';

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

/** A package's place in a repository: its repository arch, name and own arch. */
const nameKey = (p: { nevra: string; arch: string }) => {
  const n = parseNevra(p.nevra);
  return `${p.arch}/${n.name}.${n.arch}`;
};
/** Keys of a repository's records, parsed once (the records are reused from one publish to the next). */
const keys = new WeakMap<object, string>();
const key = (p: { nevra: string; arch: string }) => {
  let k = keys.get(p);
  if (k === undefined) {
    k = nameKey(p);
    keys.set(p, k);
  }
  return k;
};

/** `sorted` (in snapshot order) and `more` merged in that order; `sorted` is sorted whole when it is not. */
function mergeInOrder(sorted: readonly RepoPackage[], more: RepoPackage[]): RepoPackage[] {
  more.sort(byArchAndName);
  for (let i = 1; i < sorted.length; i++)
    if (byArchAndName(sorted[i - 1]!, sorted[i]!) > 0) return [...sorted, ...more].sort(byArchAndName);
  const out: RepoPackage[] = new Array(sorted.length + more.length);
  let [i, j, k] = [0, 0, 0];
  while (i < sorted.length && j < more.length)
    out[k++] = byArchAndName(sorted[i]!, more[j]!) <= 0 ? sorted[i++]! : more[j++]!;
  while (i < sorted.length) out[k++] = sorted[i++]!;
  while (j < more.length) out[k++] = more[j++]!;
  return out;
}

/**
 * What a release changes in a repository (pure). Each new package goes under every repository arch it fits
 * (noarch under all of them). A repository keeps `keepVersions` versions of each name.arch, newest first (0: all,
 * so that `dnf downgrade` finds the earlier ones); a new version beyond that replaces the oldest kept one, and a
 * version older than the newest there is skipped. The same NEVRA with the same bytes is unchanged; with other
 * bytes it is refused, since dnf could not tell the two apart (a build repository, `sameNevraReplaces`, takes the
 * rebuild instead: Lenix's buildroots pick packages by digest). Packages nothing replaces stay.
 */
export function planRelease(
  current: readonly RepoPackage[],
  candidates: readonly CandidatePackage[],
  repoArches: readonly string[],
  opts: { readonly sameNevraReplaces?: boolean; readonly keepVersions?: number } = {},
): ReleasePlan {
  const keep = opts.keepVersions ?? 1;
  const newestFirst = (a: RepoPackage, b: RepoPackage) => compareEvr(parseNevra(b.nevra), parseNevra(a.nevra));
  const skipped: { name: string; why: string }[] = [];
  // Each candidate under each repository arch it fits.
  const incoming: RepoPackage[] = [];
  for (const c of candidates) {
    const arches = c.arch === 'noarch' ? repoArches : repoArches.filter((a) => a === c.arch);
    if (arches.length === 0) {
      skipped.push({ name: c.name, why: `arch ${c.arch} is not one of the repository's (${repoArches.join(', ')})` });
      continue;
    }
    for (const arch of arches) {
      const { artifactId, sha256, name, nevra, buildId, importId } = c;
      incoming.push(
        importId === undefined
          ? { artifactId, sha256, name, arch, nevra, buildId }
          : { artifactId, sha256, name, arch, nevra, buildId, importId },
      );
    }
  }
  // Only the names the candidates touch are planned again: every other package stays as it is, so a release of
  // one package into a repository of 50,000 works on that name's versions, not on all of them.
  const incomingKeys = incoming.map(nameKey);
  const touched = new Set(incomingKeys);
  const untouched: RepoPackage[] = [];
  const next = new Map<string, RepoPackage[]>();
  for (const p of current) {
    const k = key(p);
    if (!touched.has(k)) untouched.push(p);
    else if (next.has(k)) next.get(k)!.push(p);
    else next.set(k, [p]);
  }
  for (const list of next.values()) list.sort(newestFirst);
  const before = new Set([...next.values()].flat());
  const added: RepoPackage[] = [];
  const replaced: { from: RepoPackage; to: RepoPackage }[] = [];
  const unchanged: RepoPackage[] = [];
  const seen = new Set<RepoPackage>();
  for (let i = 0; i < incoming.length; i++) {
    const [pkg, k] = [incoming[i]!, incomingKeys[i]!];
    const list = next.get(k) ?? [];
    const same = list.find((p) => p.nevra === pkg.nevra);
    if (same) {
      if (same.sha256 !== pkg.sha256 && opts.sameNevraReplaces) {
        // A build repository takes a rebuild of the same EVR (its buildroots install by digest).
        replaced.push({ from: same, to: pkg });
        list[list.indexOf(same)] = pkg;
        continue;
      }
      if (same.sha256 !== pkg.sha256) {
        throw new LenixError(
          'RELEASE_CONFLICT',
          `${pkg.nevra} is already in the repository with other bytes (${same.sha256.slice(0, 12)}…); bump the release`,
        );
      }
      if (before.has(same) && !seen.has(same)) {
        seen.add(same);
        unchanged.push(same);
      }
      continue;
    }
    const newest = list[0];
    if (newest && compareEvr(parseNevra(pkg.nevra), parseNevra(newest.nevra)) < 0) {
      skipped.push({ name: pkg.name, why: `older than ${newest.nevra} already in ${pkg.arch}` });
      continue;
    }
    list.unshift(pkg);
    next.set(k, list);
    const dropped = keep > 0 ? list.splice(keep) : [];
    if (dropped.length === 0) added.push(pkg);
    for (const from of dropped) replaced.push({ from, to: pkg });
  }
  // The untouched keep their order (a snapshot's list is sorted); the planned names are merged in.
  const packages = mergeInOrder(untouched, [...next.values()].flat());
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
