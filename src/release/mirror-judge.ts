import type { SnapshotRecord } from '../store/records.js';

/** What a mirror's repomd.xml says about it, against every snapshot a repository published. */
export type MirrorVerdict =
  | { readonly state: 'current'; readonly snapshotId: number; readonly behind: 0 }
  | { readonly state: 'behind'; readonly snapshotId: number; readonly behind: number }
  | { readonly state: 'bad'; readonly snapshotId: null; readonly behind: null };

/**
 * Judge the repomd.xml a mirror serves for one arch by its sha256 (pure): the current snapshot's → current; an
 * earlier published snapshot's → behind by the number of snapshots that went live after it (0 when it is a
 * snapshot the repository was rolled back from); no snapshot's → bad, bytes Lenix never published there (an edit
 * or a tampered mirror). Pruned snapshots still count: their repomd.xml digests stay on record.
 */
export function judgeRepomd(
  sha256: string,
  arch: string,
  snapshots: readonly Pick<SnapshotRecord, 'id' | 'repomd' | 'publishedAt'>[],
  currentId: number,
): MirrorVerdict {
  const published = snapshots.filter((s) => s.publishedAt !== null && s.repomd?.[arch] !== undefined);
  const current = published.find((s) => s.id === currentId);
  if (current?.repomd?.[arch] === sha256) return { state: 'current', snapshotId: current.id, behind: 0 };
  // The newest snapshot with those bytes (a republish can repeat a repomd.xml).
  const match = published.filter((s) => s.repomd?.[arch] === sha256).sort((a, b) => b.id - a.id)[0];
  if (!match) return { state: 'bad', snapshotId: null, behind: null };
  const behind = published.filter((s) => s.id > match.id && s.id <= currentId).length;
  return { state: 'behind', snapshotId: match.id, behind };
}
