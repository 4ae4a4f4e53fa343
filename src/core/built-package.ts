/**
 * Whether an uploaded package is one the build made (pure). The server trusts no agent's word: a build task may
 * upload only its build's own source package, and binary packages that the build's spec declares, built from
 * that source package, for the task's architecture (or noarch), under their own NEVRA file name.
 */
export interface UploadedPackage {
  /** The file name the agent gave. */
  readonly fileName: string;
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  readonly isSource: boolean;
  readonly sourceRpm: string | null;
}

export interface BuildFacts {
  readonly packageName: string;
  /** `[epoch:]version-release` as parsed from the spec at build creation. */
  readonly packageEvr: string;
  /** Binary packages (name, `[epoch:]version-release`) the spec declares; null for builds made before they were recorded. */
  readonly declaredPackages: readonly { readonly name: string; readonly evr: string }[] | null;
  /** The file name of the build's SRPM, once uploaded. */
  readonly srpmName: string | null;
}

/** `name-version-release.arch.rpm`, as rpmbuild names packages (the epoch is not in file names). */
export function packageFileName(p: Pick<UploadedPackage, 'name' | 'version' | 'release' | 'arch'>): string {
  return `${p.name}-${p.version}-${p.release}.${p.arch}.rpm`;
}

/** A reason to refuse the upload, or null when it is what the task should produce. */
export function refuseUpload(
  p: UploadedPackage,
  task: { readonly kind: string; readonly arch: string },
  build: BuildFacts,
): string | null {
  if (p.fileName !== packageFileName(p)) return `${p.fileName} is named unlike its header (${packageFileName(p)})`;
  const evr = `${p.epoch !== null && p.epoch !== 0 ? `${p.epoch}:` : ''}${p.version}-${p.release}`;
  const specEvr = build.packageEvr.replace(/^0:/, '');
  if (p.isSource) {
    if (task.kind !== 'srpm') return `a ${task.kind} task does not make source packages`;
    if (p.name !== build.packageName || evr !== specEvr)
      return `the source package is ${p.name}-${evr}; the spec parsed at build creation is ${build.packageName}-${specEvr}`;
    return null;
  }
  if (task.kind !== 'binary') return `a ${task.kind} task does not make binary packages`;
  if (p.arch !== task.arch && p.arch !== 'noarch')
    return `${p.fileName} is for ${p.arch}; this task builds ${task.arch}`;
  if (build.srpmName === null || p.sourceRpm !== build.srpmName)
    return `${p.fileName} was built from ${p.sourceRpm ?? 'no source package'}, not from this build's ${build.srpmName ?? 'SRPM'}`;
  if (build.declaredPackages === null)
    return evr === specEvr ? null : `${p.fileName} is version ${evr}; the build is ${specEvr}`;
  const declared = build.declaredPackages.find((d) => d.name === p.name);
  if (!declared)
    return `${p.name} is not a package that the spec declares (${build.declaredPackages.map((d) => d.name).join(', ')})`;
  if (evr !== declared.evr.replace(/^0:/, ''))
    return `${p.fileName} is version ${evr}; the spec declares ${p.name} ${declared.evr}`;
  return null;
}
