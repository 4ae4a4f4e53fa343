import type { RepoRecord, SnapshotRecord } from '../store/records.js';
import { TIME_FILE } from './mirror-tree.js';

/** One entry of a directory listing of a published tree. */
export interface TreeEntry {
  readonly name: string;
  readonly folder: boolean;
}

/**
 * What a folder of a snapshot's tree holds, as mirrors' directory listings show it: the repository's arches and its
 * TIME file; an arch's Packages and repodata folders; the packages of the arch; its metadata files (from this
 * server's copy of the snapshot, or the snapshot's record of them in a shared store). Null: no such folder.
 */
export async function treeListing(
  repo: Pick<RepoRecord, 'arches'>,
  parts: readonly string[],
  read: {
    snapshot: () => Promise<SnapshotRecord | null>;
    /** The names in a folder of this server's copy of the snapshot (a path relative to it), or null. */
    localFiles: (rel: string) => Promise<string[] | null>;
  },
): Promise<TreeEntry[] | null> {
  if (parts.length === 0)
    return [...repo.arches.map((a) => ({ name: a, folder: true })), { name: TIME_FILE, folder: false }];
  const arch = parts[0]!;
  if (!repo.arches.includes(arch) || parts.length > 2) return null;
  if (parts.length === 1)
    return [
      { name: 'Packages', folder: true },
      { name: 'repodata', folder: true },
    ];
  const snap = await read.snapshot();
  if (!snap) return null;
  const files = (names: readonly string[]) =>
    [...new Set(names)]
      .filter((f) => !f.startsWith('.') && !f.includes('/'))
      .sort()
      .map((name) => ({ name, folder: false }));
  if (parts[1] === 'Packages') return files(snap.packages.filter((p) => p.arch === arch).map((p) => p.name));
  if (parts[1] !== 'repodata') return null;
  const prefix = `${arch}/repodata/`;
  const local = await read.localFiles(`${arch}/repodata`);
  return files(
    local ??
      Object.keys(snap.files ?? {})
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length)),
  );
}
