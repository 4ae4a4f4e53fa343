import { parseSha256 } from '../core/ids.js';
import type { Clock } from '../core/clock.js';
import { derivePackageMetadata } from '../rpm/package-metadata.js';
import type { BlobStore } from '../store/blob-store.js';
import { metadataKey } from '../store/package-metadata-store.js';
import type { Store } from '../store/store.js';
import type { EntryPack } from './entry-pack.js';

/** Packages per createrepo_c run when deriving metadata. */
const METADATA_RUN = 200;

/**
 * Derive and store the repository metadata of packages that have none yet (createrepo_c over them, in runs of
 * METADATA_RUN): when they are signed or imported, and at publish time for any recorded before this existed.
 * Returns how many were derived.
 */
export async function recordPackageMetadata(
  deps: { store: Pick<Store, 'packageMetadata'>; blobs: BlobStore; clock: Clock; pack?: EntryPack },
  packages: readonly { sha256: string; name: string }[],
): Promise<number> {
  const missing = await deps.store.packageMetadata.missing(packages.map((p) => ({ sha256: p.sha256, file: p.name })));
  for (let i = 0; i < missing.length; i += METADATA_RUN) {
    const run = missing.slice(i, i + METADATA_RUN);
    const entries = await withLocalFiles(deps.blobs, run, (files) =>
      derivePackageMetadata(run.map((p, k) => ({ file: files[k]!, name: p.file, sha256: p.sha256 }))),
    );
    await deps.store.packageMetadata.put(entries, deps.clock.now());
    // A cache: when it cannot be written, publishes read the database instead.
    await deps.pack?.add(entries.map((e) => ({ key: metadataKey(e), gz: e.gz, text: e.text }))).catch(() => undefined);
  }
  return missing.length;
}

/** Run `fn` with local files of these blobs (each valid until `fn` settles). */
async function withLocalFiles<T>(
  blobs: BlobStore,
  packages: readonly { sha256: string }[],
  fn: (files: string[]) => Promise<T>,
  files: string[] = [],
): Promise<T> {
  const next = packages[files.length];
  if (!next) return fn(files);
  return blobs.withLocalFile(parseSha256(next.sha256), (file) => withLocalFiles(blobs, packages, fn, [...files, file]));
}
