import type { Fence } from '../store/leader-store.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { LenixError } from '../core/errors.js';
import { preloadVerifier, verifyDetached } from '../crypto/detached.js';
import type { BlobStore } from '../store/blob-store.js';
import type { ReleaseRecord, RepoRecord, SnapshotPackage, SnapshotRecord } from '../store/records.js';
import type { ReleaseStore } from '../store/release-store.js';
import type { Store } from '../store/store.js';
import { bootId, fsyncDir, syncTree, writeDurably } from '../store/durable.js';
import { isTransientDbError } from '../store/rows.js';
import { EntryPack, PACK_DIR } from './entry-pack.js';
import { recordPackageMetadata } from './package-metadata-runs.js';
import { syncMirrorTree } from './mirror-tree.js';
import { treeListing, type TreeEntry } from './tree-listing.js';
import { MetadataMissing, PackReadFailed, writeRepodata } from './repodata.js';
import { CACHE_DIR, LOG_DIR } from './repodata-cache.js';
import { planRelease, type CandidatePackage, type RepoPackage } from './plan.js';

export type MetadataSignatures =
  | { readonly state: 'waiting' }
  | { readonly state: 'failed'; readonly reason: string }
  | { readonly state: 'done'; readonly signatures: readonly { path: string; signature: string }[] };

export interface PublisherDeps {
  readonly store: Pick<Store, 'artifacts' | 'imports' | 'packageMetadata'>;
  readonly releases: ReleaseStore;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly reposDir: string;
  /** Ask the signer for detached signatures over repository metadata (a `repomd` sign task). */
  readonly requestMetadataSignature: (
    release: ReleaseRecord,
    keyFingerprint: string,
    files: { path: string; sha256: string; contentBase64: string }[],
  ) => Promise<number>;
  /** Where that request stands: still waiting, refused, or the signatures (the signer's `repomd` task). */
  readonly metadataSignatures: (release: ReleaseRecord) => Promise<MetadataSignatures>;
  /**
   * Errata for a snapshot being built: updateinfo.xml per arch folder (null: none) and the advisories it
   * carries (recorded with the snapshot; approved ones are released when it goes live).
   */
  readonly updateinfo?: (
    repo: RepoRecord,
    packages: readonly SnapshotPackage[],
  ) => Promise<{ perArch: (arch: string) => string | null; advisories: readonly string[] }>;
  /**
   * Whether this process is the publisher among servers sharing the database (default: yes). Another server's
   * ticks do nothing; the publisher's own timer picks up what they were asked to do.
   */
  readonly mayPublish?: () => boolean;
  /** Where several servers share the database: the publisher role's fence, checked as a snapshot goes live. */
  readonly fence?: () => Fence | null;
  /** A publish failed with this error code (counted in the server's metrics). */
  readonly failed?: (code: string) => void;
  /** How long a mirror tree stays after its successor went live (mirrors still syncing from it); default 6 h. */
  readonly mirrorKeepMs?: number;
  /** Called when a snapshot is live (the release statement goes into the ledger). */
  readonly published?: (release: ReleaseRecord, repo: RepoRecord, snapshot: SnapshotRecord) => Promise<void>;
}

/** In a snapshot's folder: the boot it was written in (durable.ts `bootId`). */
const BOOT_FILE = '.boot-id';

/**
 * Publishing (effectful; the plan itself is pure, plan.ts). A release moves approved → publishing →
 * published | failed, driven by what the database says, so a restarted server picks up where it stopped:
 *
 *   1. write the snapshot's metadata in REPOS/NAME/snapshots/ID.tmp: per arch, primary/filelists/other
 *      streamed from each package's stored entries (derived once when it was recorded; repodata.ts), updateinfo
 *      and repomd.xml; no package is read or copied. Then ask the signer to sign each repomd.xml, and start
 *      writing the folder to disk meanwhile;
 *   2. when the signatures are back and verify against the repository key, write repomd.xml.asc, sync the
 *      folder, rename ID.tmp to ID, and switch REPOS/NAME/current (a symlink) to it with one rename. A folder
 *      written before the machine restarted (its boot is in BOOT_FILE) may have lost what was not on disk yet:
 *      it is built again.
 *
 * Clients only ever read through `current`, which names a complete snapshot, so they see the old or the
 * new one, never a mix. Its packages are served by digest from the blob store (packageIn); the plain tree
 * for mirrors (mirror-tree.ts) is brought up to date after the switch, copying only what changed.
 */
export class Publisher {
  private running: Promise<void> | null = null;
  private again = false;

  /** Snapshots' package indexes for serving ("ARCH/FILE" → sha256), the few most recently used. */
  private readonly indexes = new Map<number, Map<string, string>>();

  /** Entries this process derived, read by a publish before the database (entry-pack.ts). */
  private readonly pack: EntryPack;

  constructor(private readonly deps: PublisherDeps) {
    preloadVerifier();
    this.pack = new EntryPack(path.join(deps.reposDir, PACK_DIR));
  }

  /** Close the entry pack's files (the server is stopping). */
  close(): Promise<void> {
    return this.pack.close();
  }

  repoDir(name: string): string {
    return path.join(this.deps.reposDir, name);
  }

  /**
   * The digest of the package a snapshot serves as ARCH/Packages/FILE (null: none). Packages are served from
   * the blob store by digest, through this index; a snapshot's folder holds only its metadata.
   */
  async packageIn(snapshotId: number, arch: string, file: string): Promise<string | null> {
    let index = this.indexes.get(snapshotId);
    if (!index) {
      const snap = await this.deps.releases.getSnapshot(snapshotId);
      if (!snap) return null;
      index = new Map(snap.packages.map((p) => [`${p.arch}/${p.name}`, p.sha256]));
      if (this.indexes.size >= 8) this.indexes.delete(this.indexes.keys().next().value!);
    } else this.indexes.delete(snapshotId);
    this.indexes.set(snapshotId, index); // most recently used last
    return index.get(`${arch}/${file}`) ?? null;
  }

  /** Derive and store the repository metadata of packages that have none yet (package-metadata-runs.ts). */
  recordMetadata(packages: readonly { sha256: string; name: string }[]): Promise<number> {
    return recordPackageMetadata({ ...this.deps, pack: this.pack }, packages);
  }

  /** Drive every release that is waiting to move on. Re-entrant calls coalesce into one more pass. */
  tick(): Promise<void> {
    if (this.deps.mayPublish && !this.deps.mayPublish()) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass().catch((err: unknown) =>
          this.deps.log.error({ component: 'release', err }, 'publish pass failed'),
        );
      } while (this.again);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    for (const r of await this.deps.releases.listReleasesByState('publishing')) await this.advance(r);
    for (const r of await this.deps.releases.listReleasesByState('approved')) {
      const busy = (await this.deps.releases.listReleasesByState('publishing')).some((p) => p.repoId === r.repoId);
      if (busy) continue; // one publish per repository at a time, in order
      if (await this.deps.releases.moveRelease(r.id, 'approved', 'publishing', {}, this.deps.clock.now())) {
        await this.advance((await this.deps.releases.getRelease(r.id))!);
      }
    }
  }

  private async advance(release: ReleaseRecord): Promise<void> {
    const repo = (await this.deps.releases.getRepo(release.repoId))!;
    try {
      const snap = release.snapshotId === null ? null : await this.deps.releases.getSnapshot(release.snapshotId);
      if (!snap || snap.state === 'building') {
        await this.build(release, repo, snap);
        return;
      }
      if (snap.state === 'signing') await this.finishIfSigned(release, repo, snap);
    } catch (err) {
      if (isTransientDbError(err)) {
        // The database went away mid-publish (a failover): the release stays where the database says it
        // is, and the next pass takes it up from there.
        this.deps.log.warn(
          { component: 'release', release: release.id, err: (err as Error).message },
          'publish interrupted',
        );
        return;
      }
      if (err instanceof LenixError && err.code === 'NOT_LEADER') {
        // Another server is the publisher now (this one stalled past its role's lifetime): it takes the
        // release up where the database says it is; this one switched nothing.
        this.deps.log.warn({ component: 'release', release: release.id }, 'publisher role lost mid-publish');
        return;
      }
      const e = err instanceof LenixError ? err : new LenixError('INTERNAL', (err as Error).message, { cause: err });
      this.deps.log.error({ component: 'release', release: release.id, err: e.message }, 'publish failed');
      this.deps.failed?.(e.code);
      // The snapshot may have been made during this pass: read its id again rather than trust the old record.
      const snapshotId = (await this.deps.releases.getRelease(release.id))?.snapshotId ?? release.snapshotId;
      if (snapshotId !== null) {
        await this.deps.releases.setSnapshotState(snapshotId, 'failed');
        await rm(path.join(this.repoDir(repo.name), 'snapshots', `${snapshotId}.tmp`), {
          recursive: true,
          force: true,
        });
      }
      await this.deps.releases.moveRelease(
        release.id,
        'publishing',
        'failed',
        { reasonCode: e.code, reason: e.message },
        this.deps.clock.now(),
      );
    }
  }

  /** The packages a release would publish, planned against the repository's current snapshot. */
  async plan(
    repo: RepoRecord,
    buildIds: readonly number[],
    opts: { sameNevraReplaces?: boolean; imports?: readonly number[] } = {},
  ) {
    const current =
      repo.currentSnapshotId === null
        ? []
        : ((await this.deps.releases.getSnapshot(repo.currentSnapshotId))?.packages ?? []);
    const candidates: CandidatePackage[] = [];
    for (const id of buildIds) {
      for (const a of await this.deps.store.artifacts.listOfBuild(id)) {
        if (a.kind !== 'signed-rpm') continue;
        candidates.push({
          artifactId: a.id,
          sha256: a.sha256,
          name: a.name,
          arch: a.arch ?? 'noarch',
          nevra: a.nevra ?? a.name,
          buildId: id,
        });
      }
    }
    for (const i of await this.deps.store.imports.getMany(opts.imports ?? [])) {
      if (i.kind !== 'rpm') continue;
      candidates.push({
        artifactId: 0,
        sha256: i.sha256,
        name: i.name,
        arch: i.arch,
        nevra: i.nevra,
        buildId: 0,
        importId: i.id,
      });
    }
    return planRelease(current as RepoPackage[], candidates, repo.arches, {
      ...opts,
      keepVersions: repo.keepVersions,
    });
  }

  private async build(release: ReleaseRecord, repo: RepoRecord, existing: SnapshotRecord | null): Promise<void> {
    // The server's signing key when the repository lists it, else its newest active key: keys added only to
    // verify imported packages are not the signer's to sign with.
    const signing = await this.deps.releases.getSetting('signing_key');
    const active = activeKeys(repo);
    const key = signing && active.includes(signing) ? signing : active.pop();
    if (!key) throw new LenixError('NO_SIGNING_KEY', `repository ${repo.name} has no active key`);
    // A release into a build repository (its plan says so) takes rebuilds of the same EVR.
    const plan = await this.plan(repo, release.builds, {
      sameNevraReplaces: 'buildRepository' in release.plan,
      imports: importsOf(release),
    });
    const snap =
      existing ??
      (await this.deps.releases.createSnapshot(
        {
          repoId: repo.id,
          releaseId: release.id,
          packages: plan.packages,
          keyFingerprint: key,
          baseId: repo.currentSnapshotId,
        },
        this.deps.clock.now(),
      ));
    if (!existing)
      await this.deps.releases.moveRelease(
        release.id,
        'publishing',
        'publishing',
        { snapshotId: snap.id },
        this.deps.clock.now(),
      );
    const tmp = path.join(this.repoDir(repo.name), 'snapshots', `${snap.id}.tmp`);
    await rm(tmp, { recursive: true, force: true }); // a crash mid-build leaves a partial folder: start over
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, BOOT_FILE), await bootId());
    // Each package's entries were derived when it was signed or imported; one without them (recorded before
    // they existed, or a derivation that failed) fails the write with MetadataMissing and is derived below.
    const files: { path: string; sha256: string; contentBase64: string }[] = [];
    const repomd: Record<string, string> = {};
    const errata = this.deps.updateinfo ? await this.deps.updateinfo(repo, plan.packages) : null;
    const now = Math.floor(this.deps.clock.now() / 1000);
    const current =
      repo.currentSnapshotId === null
        ? null
        : path.join(this.repoDir(repo.name), 'snapshots', String(repo.currentSnapshotId));
    for (const arch of repo.arches) {
      const packages = plan.packages.filter((x) => x.arch === arch).map(entryOf);
      const write = () =>
        writeRepodata({
          dir: path.join(tmp, arch),
          packages,
          previous: current && path.join(current, arch),
          logDir: path.join(this.repoDir(repo.name), LOG_DIR, arch),
          fetch: (keys) => this.deps.store.packageMetadata.read(keys),
          pack: this.pack,
          updateinfo: errata?.perArch(arch) ?? null,
          now,
        });
      const { repomd: xml } = await write().catch(async (err: unknown) => {
        if (err instanceof PackReadFailed) {
          // The pack is a cache: without it, the database has every entry.
          this.deps.log.warn({ component: 'release', err: err.message }, 'entry pack dropped');
          this.pack.drop();
          return write();
        }
        if (!(err instanceof MetadataMissing)) throw err;
        // Derive what is missing, once, and write again.
        await this.recordMetadata(plan.packages);
        return write();
      });
      const sha = createHash('sha256').update(xml).digest('hex');
      repomd[arch] = sha;
      files.push({ path: `${arch}/repodata/repomd.xml`, sha256: sha, contentBase64: xml.toString('base64') });
    }
    await this.deps.releases.setSnapshotState(snap.id, 'signing', { repomd, advisories: errata?.advisories ?? [] });
    // Nothing above was synced: the files go to disk while the signature is made, and `finish` syncs them
    // (by then mostly a formality) before the folder is renamed into place.
    void syncTree(tmp, CACHE_DIR).catch(() => undefined);
    await this.deps.requestMetadataSignature(release, key, files);
    this.deps.log.info(
      { component: 'release', release: release.id, snapshot: snap.id, packages: plan.packages.length },
      'snapshot built; waiting for metadata signatures',
    );
  }

  private async finishIfSigned(release: ReleaseRecord, repo: RepoRecord, snap: SnapshotRecord): Promise<void> {
    const signed = await this.deps.metadataSignatures(release);
    if (signed.state === 'failed') throw new LenixError('SIGNATURE_INVALID', `metadata signing ${signed.reason}`);
    if (signed.state === 'waiting') return;
    const tmp = path.join(this.repoDir(repo.name), 'snapshots', `${snap.id}.tmp`);
    const final = path.join(this.repoDir(repo.name), 'snapshots', String(snap.id));
    if (!(await exists(final))) {
      if (
        !(await exists(tmp)) ||
        (await readFile(path.join(tmp, BOOT_FILE), 'utf8').catch(() => '')) !== (await bootId())
      ) {
        // The build folder is gone (crash before the rename finished writing it), or was written before the
        // machine restarted, when its files were not synced yet: build it again.
        await this.deps.releases.setSnapshotState(snap.id, 'building');
        return;
      }
      const key = await this.deps.releases.getKey(snap.keyFingerprint ?? '');
      if (!key) throw new LenixError('KEY_NOT_FOUND', `key ${snap.keyFingerprint} is not known`);
      const sigs = signed.signatures;
      for (const [arch, sha] of Object.entries(snap.repomd ?? {})) {
        const rel = `${arch}/repodata/repomd.xml`;
        const xml = await readFile(path.join(tmp, rel));
        if (createHash('sha256').update(xml).digest('hex') !== sha)
          throw new LenixError('BLOB_CORRUPT', `${rel} changed while it was being signed`);
        const sig = sigs.find((x) => x.path === rel);
        if (!sig) throw new LenixError('SIGNATURE_INVALID', `no signature for ${rel}`);
        const signer = await verifyDetached(key.publicKey, xml, sig.signature);
        if (signer !== key.fingerprint)
          throw new LenixError('SIGNATURE_INVALID', `${rel} signed by ${signer}, expected ${key.fingerprint}`);
        await writeDurably(path.join(tmp, `${rel}.asc`), sig.signature);
      }
      // A shared blob store (S3) gets every metadata file before the snapshot goes live: any server serves it.
      if (this.deps.blobs.shared)
        await this.deps.releases.setSnapshotState(snap.id, 'signing', { files: await this.shareTree(tmp, repo) });
      await syncTree(tmp, CACHE_DIR); // the cache is valid for this boot only: not synced
      await rename(tmp, final);
      await fsyncDir(path.dirname(final));
    }
    await this.switchCurrent(repo, snap.id);
    const now = this.deps.clock.now();
    await this.deps.releases.setSnapshotState(snap.id, 'ready', { publishedAt: now });
    const live = (await this.deps.releases.getSnapshot(snap.id))!;
    await this.deps.published?.(release, repo, live);
    await this.deps.releases.moveRelease(release.id, 'publishing', 'published', {}, now);
    this.deps.log.info({ component: 'release', release: release.id, snapshot: snap.id, repo: repo.name }, 'published');
    // Clients see the new snapshot now; the mirror tree follows (mirrors pull it on their own schedule).
    await this.prune(repo);
    await this.syncMirror(repo, live);
  }

  /** Put a snapshot folder's metadata files (ARCH/repodata/*, hidden caches left out) into the blob store. */
  private async shareTree(dir: string, repo: RepoRecord): Promise<Record<string, string>> {
    const files: Record<string, string> = {};
    for (const arch of repo.arches) {
      const repodata = path.join(dir, arch, 'repodata');
      for (const name of (await readdir(repodata)).filter((n) => !n.startsWith('.')).sort()) {
        const { sha256 } = await this.deps.blobs.put(createReadStream(path.join(repodata, name)));
        files[`${arch}/repodata/${name}`] = sha256;
      }
    }
    return files;
  }

  /**
   * Where a snapshot's metadata file ARCH/repodata/NAME is: this server's folder when it wrote the snapshot,
   * else the shared blob store (the digest the snapshot recorded); null when neither has it.
   */
  /** What a folder of a snapshot's tree holds, for directory listings (tree-listing.ts); null: no such folder. */
  async listing(repo: RepoRecord, snapshotId: number, parts: readonly string[]): Promise<TreeEntry[] | null> {
    return treeListing(repo, parts, {
      snapshot: () => this.deps.releases.getSnapshot(snapshotId),
      localFiles: (rel) =>
        readdir(path.join(this.repoDir(repo.name), 'snapshots', String(snapshotId), rel)).catch(() => null),
    });
  }

  async metadataFile(
    repoName: string,
    snapshotId: number,
    parts: readonly string[],
  ): Promise<{ readonly file: string; readonly size: number } | { readonly sha256: string } | null> {
    const file = path.join(this.repoDir(repoName), 'snapshots', String(snapshotId), ...parts);
    const st = await stat(file).catch(() => null);
    if (st?.isFile()) return { file, size: st.size };
    const snap = await this.deps.releases.getSnapshot(snapshotId);
    const sha = snap?.files?.[parts.join('/')];
    return sha ? { sha256: sha } : null;
  }

  /**
   * Make a snapshot the one served: the database says which (every server serves from it), then this server's
   * `current` symlink follows where the snapshot's folder is here (a new link renamed over the old one). A
   * publish is `fenced` (only while this server holds the publisher role); an administrator's rollback is not,
   * so any server takes it.
   */
  async switchCurrent(repo: RepoRecord, snapshotId: number, fenced = true): Promise<void> {
    const fence = fenced ? this.deps.fence?.() : undefined;
    if (fence === null) throw new LenixError('NOT_LEADER', 'this server is no longer the publisher');
    await this.deps.releases.setCurrentSnapshot(repo.id, snapshotId, fence);
    const dir = this.repoDir(repo.name);
    if (!(await exists(path.join(dir, 'snapshots', String(snapshotId))))) {
      await rm(path.join(dir, 'current'), { force: true }); // another server's snapshot: no stale link here
      return;
    }
    const tmpLink = path.join(dir, `.current-${snapshotId}-${process.pid}`);
    await rm(tmpLink, { force: true });
    await symlink(path.join('snapshots', String(snapshotId)), tmpLink);
    await rename(tmpLink, path.join(dir, 'current'));
    await fsyncDir(dir);
  }

  /** Bring the repository's mirror tree to a snapshot; a failure is logged and put right by the next sync. */
  async syncMirror(repo: RepoRecord, snap: SnapshotRecord): Promise<void> {
    try {
      const r = await syncMirrorTree({
        blobs: this.deps.blobs,
        repoDir: this.repoDir(repo.name),
        arches: repo.arches,
        snapshot: snap,
        previous: (id) => this.deps.releases.getSnapshot(id),
        now: this.deps.clock.now(),
        keepMs: this.deps.mirrorKeepMs ?? 6 * 3_600_000,
      });
      this.deps.log.info({ component: 'release', repo: repo.name, snapshot: snap.id, ...r }, 'mirror tree updated');
    } catch (err) {
      this.deps.log.error({ component: 'release', repo: repo.name, snapshot: snap.id, err }, 'mirror tree not updated');
    }
  }

  /** Roll back to a ready snapshot (default: the one published before the current one). */
  async rollback(repo: RepoRecord, snapshotId?: number): Promise<SnapshotRecord> {
    const snaps = (await this.deps.releases.listSnapshots(repo.id, { packages: false })).filter(
      (s) => s.state === 'ready',
    );
    const target =
      snapshotId !== undefined
        ? snaps.find((s) => s.id === snapshotId)
        : snaps.find((s) => repo.currentSnapshotId !== null && s.id < repo.currentSnapshotId);
    const here = target && (await exists(path.join(this.repoDir(repo.name), 'snapshots', String(target.id))));
    if (!target || !(here || target.files)) {
      throw new LenixError(
        'SNAPSHOT_NOT_FOUND',
        `no ready snapshot ${snapshotId ?? 'before the current one'} in ${repo.name}`,
      );
    }
    await this.switchCurrent(repo, target.id, false);
    const full = (await this.deps.releases.getSnapshot(target.id))!;
    await this.syncMirror(repo, full);
    return full;
  }

  /**
   * Remove snapshot folders older than the repository's retention (or `keepDays`), never the current or the
   * previous one; each removed snapshot is marked failed (its packages no longer hold their bytes). Returns how many.
   */
  async prune(repo: RepoRecord, keepDays?: number): Promise<number> {
    const fresh = (await this.deps.releases.getRepo(repo.id))!;
    const snaps = (await this.deps.releases.listSnapshots(repo.id, { packages: false })).filter(
      (s) => s.state === 'ready',
    );
    const keep = new Set([fresh.currentSnapshotId, ...snaps.slice(0, 2).map((s) => s.id)]);
    const cutoff = this.deps.clock.now() - (keepDays ?? fresh.keepDays) * 86_400_000;
    let pruned = 0;
    for (const s of snaps) {
      if (keep.has(s.id) || (s.publishedAt ?? 0) > cutoff) continue;
      await rm(path.join(this.repoDir(repo.name), 'snapshots', String(s.id)), { recursive: true, force: true });
      await this.deps.releases.setSnapshotState(s.id, 'failed');
      pruned++;
    }
    return pruned;
  }
}

/** A package's metadata entry key, one object per package record (writeRepodata keys its work on them). */
const entries = new WeakMap<RepoPackage, { sha256: string; file: string }>();
function entryOf(p: RepoPackage): { sha256: string; file: string } {
  let e = entries.get(p);
  if (!e) {
    e = { sha256: p.sha256, file: p.name };
    entries.set(p, e);
  }
  return e;
}

/** The imported packages a release publishes (its plan names them). */
export function importsOf(release: Pick<ReleaseRecord, 'plan'>): number[] {
  const ids = (release.plan as { imports?: unknown }).imports;
  return Array.isArray(ids) ? ids.filter((x): x is number => Number.isInteger(x)) : [];
}

export function activeKeys(repo: RepoRecord): string[] {
  return repo.keys.filter((k) => k.retiredAt === null).map((k) => k.fingerprint);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
