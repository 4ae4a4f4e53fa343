import {
  chmod,
  copyFile,
  link,
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { LenixError } from '../core/errors.js';
import { parseSha256 } from '../core/ids.js';
import type { BlobStore } from '../store/blob-store.js';
import { fsyncDir, sha256File, writeDurably } from '../store/durable.js';
import type { SnapshotPackage, SnapshotRecord } from '../store/records.js';

/** The name under a repository's folder that mirrors copy: a symlink to the current tree in mirror.d/. */
export const MIRROR_DIR = 'mirror';
/** The trees: one complete, never-modified folder per snapshot, mirror.d/ID. */
export const MIRROR_TREES = 'mirror.d';
const MARKER = '.snapshot';
/** Packages placed at once in a new tree. */
const PARALLEL = 32;

/**
 * A plain directory tree of a repository's current snapshot for mirrors (rsync, a web server):
 * REPO/mirror/ARCH/Packages/*.rpm, ARCH/repodata/ and TIME, where REPO/mirror is a symlink to mirror.d/ID.
 *
 * Each snapshot gets its own tree, built beside the others and never changed afterwards: unchanged packages are
 * hard links to the previous tree's files (no bytes copied), added ones are copied from the blob store, metadata
 * from the snapshot; then the symlink is switched with one rename. An rsync (daemon module or `rsync HOST:PATH/`)
 * enters the folder the symlink names when it starts and reads that one tree to the end, whatever is published
 * meanwhile, so a mirror never receives a repomd.xml whose files are missing. Earlier trees stay for `keepMs`
 * after their successor went live (mirrors still syncing from them), then are removed.
 */
export async function syncMirrorTree(o: {
  readonly blobs: BlobStore;
  readonly repoDir: string;
  readonly arches: readonly string[];
  readonly snapshot: SnapshotRecord;
  /** A snapshot record by id (the previous tree's, to link its unchanged packages). */
  readonly previous: (id: number) => Promise<SnapshotRecord | null>;
  readonly now: number;
  readonly keepMs: number;
}): Promise<{ copied: number; linked: number; removedTrees: number }> {
  const trees = path.join(o.repoDir, MIRROR_TREES);
  await mkdir(trees, { recursive: true });
  await adoptPlainTree(o.repoDir);
  const markerId = await mirroredSnapshot(o.repoDir);
  const id = o.snapshot.id;
  let copied = 0;
  let linked = 0;
  // A tree is complete once it has its name, and never changed: one that exists (a rollback) is used as it is.
  if (!(await exists(path.join(trees, String(id))))) {
    const previous = markerId === null ? null : await o.previous(markerId);
    const prevDir = markerId === null ? null : path.join(trees, String(markerId));
    const tmp = path.join(trees, `.${id}.tmp`);
    const fresh: string[] = [];
    await rm(tmp, { recursive: true, force: true });
    const source = path.join(o.repoDir, 'snapshots', String(id));
    for (const arch of o.arches) {
      const pkgDir = path.join(tmp, arch, 'Packages');
      const mdDir = path.join(tmp, arch, 'repodata');
      await mkdir(pkgDir, { recursive: true });
      await mkdir(mdDir, { recursive: true });
      const had = previous ? byName(previous.packages, arch) : new Map<string, string>();
      const place = async ([name, sha]: [string, string]) => {
        const dest = path.join(pkgDir, name);
        if (prevDir && had.get(name) === sha && (await linkOrCopy(path.join(prevDir, arch, 'Packages', name), dest))) {
          linked++;
          return;
        }
        await o.blobs.withLocalFile(parseSha256(sha), (file) => publishCopy(file, dest, sha));
        fresh.push(dest);
        copied++;
      };
      // Many at once: each link is a round trip to libuv's thread pool, and a large tree has tens of thousands.
      const all = [...byName(o.snapshot.packages, arch)];
      for (let i = 0; i < all.length; i += PARALLEL) await Promise.all(all.slice(i, i + PARALLEL).map(place));
      for (const f of await readdir(path.join(source, arch, 'repodata'))) {
        await copyFile(path.join(source, arch, 'repodata', f), path.join(mdDir, f), fsConstants.COPYFILE_FICLONE);
        await chmod(path.join(mdDir, f), 0o644);
        fresh.push(path.join(mdDir, f));
      }
      fresh.push(pkgDir, mdDir, path.join(tmp, arch));
    }
    await writeDurably(path.join(tmp, MARKER), `${id}\n`);
    // As AlmaLinux's mirrors have it: when the tree was published (seconds), for a coarse freshness check.
    await writeDurably(path.join(tmp, TIME_FILE), timeFile(o.snapshot));
    // Durable before it is switched to: the new files and folders (linked packages are durable already).
    for (const f of [...fresh, tmp]) await fsyncDir(f); // (fsyncDir syncs files as well)
    await rename(tmp, path.join(trees, String(id)));
    await fsyncDir(trees);
  }
  // One rename switches what a new rsync sees; one already running goes on in the tree it entered.
  const tmpLink = path.join(o.repoDir, `.${MIRROR_DIR}-${id}-${process.pid}`);
  await rm(tmpLink, { force: true });
  await symlink(path.join(MIRROR_TREES, String(id)), tmpLink);
  await rename(tmpLink, path.join(o.repoDir, MIRROR_DIR));
  await fsyncDir(o.repoDir);
  return { copied, linked, removedTrees: await removeOldTrees(trees, id, o.now, o.keepMs) };
}

/**
 * Remove trees that stopped being current more than `keepMs` ago: a tree's successor is the next newer tree,
 * and the time it went live is that tree's folder time (set as it was completed, just before the switch).
 */
async function removeOldTrees(trees: string, currentId: number, now: number, keepMs: number): Promise<number> {
  const ids = (await readdir(trees))
    .filter((f) => /^\d+$/.test(f))
    .map(Number)
    .sort((a, b) => a - b);
  let removed = 0;
  for (let i = 0; i < ids.length; i++) {
    const tid = ids[i]!;
    if (tid === currentId) continue;
    const next = ids.slice(i + 1).find((x) => x !== tid);
    const successor = next === undefined ? null : await stat(path.join(trees, String(next))).catch(() => null);
    const retiredAt = successor ? successor.mtimeMs : now;
    if (now - retiredAt < keepMs) continue;
    await rm(path.join(trees, String(tid)), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** A folder from before trees were kept per snapshot (REPO/mirror a plain folder) becomes mirror.d/ID. */
async function adoptPlainTree(repoDir: string): Promise<void> {
  const dir = path.join(repoDir, MIRROR_DIR);
  const st = await lstat(dir).catch(() => null);
  if (!st?.isDirectory()) return;
  const id = Number((await readFile(path.join(dir, MARKER), 'utf8').catch(() => '')).trim());
  if (Number.isInteger(id) && id > 0 && !(await exists(path.join(repoDir, MIRROR_TREES, String(id))))) {
    await rename(dir, path.join(repoDir, MIRROR_TREES, String(id)));
    await symlink(path.join(MIRROR_TREES, String(id)), dir);
  } else await rm(dir, { recursive: true, force: true });
}

/** The TIME file of a repository's tree: the time its snapshot went live, in seconds since the epoch. */
export const TIME_FILE = 'TIME';
export function timeFile(snap: Pick<SnapshotRecord, 'publishedAt' | 'createdAt'>): string {
  return `${Math.floor((snap.publishedAt ?? snap.createdAt) / 1000)}\n`;
}

/** The snapshot the mirror tree shows (the tree REPO/mirror names), or null. */
export async function mirroredSnapshot(repoDir: string): Promise<number | null> {
  const target = await readlink(path.join(repoDir, MIRROR_DIR)).catch(() => null);
  const fromLink = target === null ? Number.NaN : Number(path.basename(target));
  const id = Number.isInteger(fromLink)
    ? fromLink
    : Number((await readFile(path.join(repoDir, MIRROR_DIR, MARKER), 'utf8').catch(() => '')).trim());
  return Number.isInteger(id) && id > 0 ? id : null;
}

function byName(packages: readonly SnapshotPackage[], arch: string): Map<string, string> {
  return new Map(packages.filter((p) => p.arch === arch).map((p) => [p.name, p.sha256]));
}

/** Hard-link a file of the previous tree; false when that is not possible (missing, another file system). */
async function linkOrCopy(from: string, to: string): Promise<boolean> {
  return link(from, to).then(
    () => true,
    () => false,
  );
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
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
