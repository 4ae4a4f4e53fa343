import { formatNevra, type Nevra } from '../../core/nevra.js';

/** Where one package of a buildroot's repositories came from. */
export interface Origin {
  readonly sha256: string;
  readonly nevra: string;
  readonly repo: string;
  readonly snapshotId: number | null;
  /** The source package it was built from (by name), to leave the package being built out of the cache key. */
  readonly source: string | null;
}

/** `name-[epoch:]version-release.arch`, as rpm -qa and the records write it. */
export const nevraOf = (p: Nevra): string => formatNevra(p);

/** `demo-app-1.0-1.lx9.src.rpm` → `demo-app`. */
export const sourceName = (sourceRpm: string | null) => sourceRpm?.replace(/-[^-]+-[^-]+\.(no)?src\.rpm$/, '') ?? null;
