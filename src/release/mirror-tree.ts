import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { LenixError } from '../core/errors.js';
import { parseSha256 } from '../core/ids.js';
import type { BlobStore } from '../store/blob-store.js';
import { sha256File, writeDurably } from '../store/durable.js';
import type { SnapshotPackage, SnapshotRecord } from '../store/records.js';

/** The folder under a repository's folder that holds the plain tree mirrors copy. */
export const MIRROR_DIR = 'mirror';
const MARKER = '.snapshot';

/**
 * A plain directory tree of a repository's current snapshot for mirrors (rsync, a web server):
 * REPO/mirror/ARCH/Packages/*.rpm and ARCH/repodata/. Clients of Lenix itself are served packages by digest
 * from the blob store; this tree is kept separately and incrementally: against the snapshot it last showed
 * (its id in mirror/.snapshot) only added or changed packages are copied and only removed ones deleted.
 * Mirror-safe order: packages and data files first, repomd.xml and its signature last, deletions after.
 * Metadata files of the previous snapshot stay, so a mirror in mid-sync never meets a missing file.
 */
export async function syncMirrorTree(o: {
  readonly blobs: BlobStore;
  readonly repoDir: string;
  readonly arches: readonly string[];
  readonly snapshot: SnapshotRecord;
  /** The snapshot the tree showed before, as its marker names it (null: unknown, compare with the folder). */
  readonly previous: (id: number) => Promise<SnapshotRecord | null>;
}): Promise<{ copied: number; removed: number }> {
  const root = path.join(o.repoDir, MIRROR_DIR);
  const source = path.join(o.repoDir, 'snapshots', String(o.snapshot.id));
  const markerId = await mirroredSnapshot(o.repoDir);
  const previous = markerId === null ? null : await o.previous(markerId);
  let copied = 0;
  let removed = 0;
  for (const arch of o.arches) {
    const pkgDir = path.join(root, arch, 'Packages');
    const mdDir = path.join(root, arch, 'repodata');
    await mkdir(pkgDir, { recursive: true });
    await mkdir(mdDir, { recursive: true });
    const want = byName(o.snapshot.packages, arch);
    const had = previous
      ? byName(previous.packages, arch)
      : new Map((await readdir(pkgDir)).filter((f) => f.endsWith('.rpm')).map((f) => [f, '']));
    for (const [name, sha] of want) {
      if (had.get(name) === sha) continue;
      const tmp = path.join(pkgDir, `.${name}.tmp`);
      await o.blobs.withLocalFile(parseSha256(sha), (file) => publishCopy(file, tmp, sha));
      await rename(tmp, path.join(pkgDir, name));
      copied++;
    }
    const keep = new Set(['repomd.xml', 'repomd.xml.asc']);
    const fresh = await readdir(path.join(source, arch, 'repodata'));
    for (const f of fresh) {
      keep.add(f);
      if (f.startsWith('repomd.xml')) continue;
      if (!(await stat(path.join(mdDir, f)).catch(() => null)))
        await copyThenRename(path.join(source, arch, 'repodata', f), path.join(mdDir, f));
    }
    await copyThenRename(path.join(source, arch, 'repodata', 'repomd.xml'), path.join(mdDir, 'repomd.xml'));
    await copyThenRename(path.join(source, arch, 'repodata', 'repomd.xml.asc'), path.join(mdDir, 'repomd.xml.asc'));
    for (const f of previous ? await dataFilesOf(o.repoDir, previous.id, arch) : []) keep.add(f);
    for (const f of await readdir(mdDir)) {
      if (!keep.has(f)) await rm(path.join(mdDir, f), { force: true });
    }
    for (const name of had.keys()) {
      if (want.has(name)) continue;
      await rm(path.join(pkgDir, name), { force: true });
      removed++;
    }
  }
  await writeDurably(path.join(root, MARKER), `${o.snapshot.id}\n`);
  // Last, as AlmaLinux's mirrors have it: when the tree was published (seconds), for a coarse freshness check.
  await writeDurably(path.join(root, TIME_FILE), timeFile(o.snapshot));
  return { copied, removed };
}

/** The TIME file of a repository's tree: the time its snapshot went live, in seconds since the epoch. */
export const TIME_FILE = 'TIME';
export function timeFile(snap: Pick<SnapshotRecord, 'publishedAt' | 'createdAt'>): string {
  return `${Math.floor((snap.publishedAt ?? snap.createdAt) / 1000)}\n`;
}

/** The snapshot the mirror tree shows (its marker), or null. */
export async function mirroredSnapshot(repoDir: string): Promise<number | null> {
  const id = Number((await readFile(path.join(repoDir, MIRROR_DIR, MARKER), 'utf8').catch(() => '')).trim());
  return Number.isInteger(id) && id > 0 ? id : null;
}

function byName(packages: readonly SnapshotPackage[], arch: string): Map<string, string> {
  return new Map(packages.filter((p) => p.arch === arch).map((p) => [p.name, p.sha256]));
}

async function dataFilesOf(repoDir: string, snapshotId: number, arch: string): Promise<string[]> {
  return readdir(path.join(repoDir, 'snapshots', String(snapshotId), arch, 'repodata')).catch(() => []);
}

async function copyThenRename(from: string, to: string): Promise<void> {
  const tmp = path.join(path.dirname(to), `.${path.basename(to)}.tmp`);
  await copyFile(from, tmp, fsConstants.COPYFILE_FICLONE);
  await chmod(tmp, 0o644);
  await rename(tmp, to);
}

/** Copy a package (reflink when possible), check the copy's digest, make it 0644 (mirrors run as other users). */
export async function publishCopy(src: string, dest: string, sha256: string): Promise<void> {
  await copyFile(src, dest, fsConstants.COPYFILE_FICLONE);
  if ((await sha256File(dest)) !== sha256) {
    await rm(dest, { force: true });
    throw new LenixError('BLOB_CORRUPT', `blob ${sha256} does not match its digest; nothing is published`);
  }
  await chmod(dest, 0o644);
}
