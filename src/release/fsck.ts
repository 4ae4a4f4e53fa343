import { createReadStream } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseSha256, type Sha256 } from '../core/ids.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ReleaseStore } from '../store/release-store.js';
import { sha256File } from '../store/durable.js';
import { MIRROR_DIR, mirroredSnapshot, publishCopy } from './mirror-tree.js';

export interface FsckProblem {
  readonly kind: 'blob' | 'published' | 'metadata';
  readonly where: string;
  readonly sha256: string;
  readonly problem: 'corrupt' | 'missing';
  /** What --repair did, or why it could not. */
  readonly repair: string | null;
}

export interface FsckReport {
  readonly blobsChecked: number;
  readonly publishedChecked: number;
  readonly metadataChecked: number;
  readonly problems: readonly FsckProblem[];
  /** No problem left (every one found was repaired). */
  readonly clean: boolean;
}

/**
 * Re-hash every blob, every package copy in the repositories' mirror trees and every metadata file of every
 * published snapshot against the digests on record (metadata against its signed repomd.xml). With
 * `repair`, a bad copy is restored from a good one: a mirror copy from its blob (or another copy of the same
 * digest), a blob from a good mirror copy. Every restored file is checked before it is renamed
 * into place.
 */
export async function fsck(
  deps: { blobs: BlobStore; releases: Pick<ReleaseStore, 'listRepos' | 'listSnapshots'>; reposDir: string },
  o: { repair: boolean },
): Promise<FsckReport> {
  const problems: FsckProblem[] = [];
  const goodBlobs = new Set<string>();
  let blobsChecked = 0;
  const badBlobs: Sha256[] = [];
  for await (const sha of deps.blobs.list()) {
    blobsChecked++;
    const good = await deps.blobs.verify(sha).then(
      () => true,
      (err: unknown) => ((err as { code?: string }).code === 'BLOB_CORRUPT' ? false : Promise.reject(err)),
    );
    if (good) goodBlobs.add(sha);
    else badBlobs.push(sha);
  }

  // Published copies (the mirror trees), and where a good copy of each digest lives.
  const copies: { file: string; sha256: string; where: string }[] = [];
  let metadataChecked = 0;
  for (const repo of await deps.releases.listRepos()) {
    const mirrored = await mirroredSnapshot(path.join(deps.reposDir, repo.name));
    for (const snap of await deps.releases.listSnapshots(repo.id)) {
      const dir = path.join(deps.reposDir, repo.name, 'snapshots', String(snap.id));
      if (snap.state !== 'ready' || !(await stat(dir).catch(() => null))) continue;
      if (snap.id === mirrored)
        for (const p of snap.packages)
          copies.push({
            file: path.join(deps.reposDir, repo.name, MIRROR_DIR, p.arch, 'Packages', p.name),
            sha256: p.sha256,
            where: `${repo.name} mirror tree (snapshot ${snap.id}) ${p.arch}/Packages/${p.name}`,
          });
      // Metadata: repomd.xml against the digest recorded when it was signed, each data file against repomd.xml.
      // It is not kept in the blob store, so it cannot be restored from there: `lenix repo republish` rebuilds it.
      for (const [arch, sha] of Object.entries(snap.repomd ?? {})) {
        const repomd = path.join(dir, arch, 'repodata', 'repomd.xml');
        const files: [string, string][] = [[repomd, sha]];
        const xml = await readFile(repomd, 'utf8').catch(() => '');
        for (const m of xml.matchAll(/<data type="[^"]+">([\s\S]*?)<\/data>/g)) {
          const sum = /<checksum type="sha256">([0-9a-f]{64})<\/checksum>/.exec(m[1]!)?.[1];
          const href = /<location href="(repodata\/[^"/]+)"/.exec(m[1]!)?.[1];
          if (sum && href) files.push([path.join(dir, arch, href), sum]);
        }
        for (const [file, want] of files) {
          metadataChecked++;
          const actual = await sha256File(file).catch(() => null);
          if (actual !== want)
            problems.push({
              kind: 'metadata',
              where: `${repo.name} snapshot ${snap.id} ${path.relative(dir, file)}`,
              sha256: want,
              problem: actual === null ? 'missing' : 'corrupt',
              repair: o.repair ? `not kept elsewhere: lenix repo republish ${repo.name}` : null,
            });
        }
      }
    }
  }
  const goodCopy = new Map<string, string>();
  const badCopies: typeof copies = [];
  for (const c of copies) {
    const actual = await sha256File(c.file).catch(() => null);
    if (actual === c.sha256) goodCopy.set(c.sha256, c.file);
    else badCopies.push(c);
  }

  for (const sha of badBlobs) {
    let repair: string | null = null;
    const from = goodCopy.get(sha);
    if (o.repair) {
      if (from) {
        await deps.blobs.put(createReadStream(from), { expected: sha });
        goodBlobs.add(sha);
        repair = `restored from ${from}`;
      } else repair = 'no good copy to restore it from';
    }
    problems.push({ kind: 'blob', where: `blob ${sha}`, sha256: sha, problem: 'corrupt', repair });
  }
  for (const c of badCopies) {
    const exists = (await stat(c.file).catch(() => null)) !== null;
    let repair: string | null = null;
    if (o.repair) {
      const tmp = `${c.file}.fsck-tmp`;
      const other = goodCopy.get(c.sha256);
      const restore = async (source: string, what: string) => {
        await publishCopy(source, tmp, c.sha256);
        await rename(tmp, c.file);
        repair = `restored from ${what}`;
      };
      if (goodBlobs.has(c.sha256))
        await deps.blobs.withLocalFile(parseSha256(c.sha256), (file) => restore(file, `blob ${c.sha256}`));
      else if (other) await restore(other, other);
      else {
        await rm(`${c.file}.fsck-tmp`, { force: true });
        repair = 'no good copy to restore it from';
      }
    }
    problems.push({
      kind: 'published',
      where: c.where,
      sha256: c.sha256,
      problem: exists ? 'corrupt' : 'missing',
      repair,
    });
  }
  const clean = problems.every((p) => p.repair?.startsWith('restored'));
  return { blobsChecked, publishedChecked: copies.length, metadataChecked, problems, clean };
}
