import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { METADATA_KINDS, metadataFooter, metadataHeader, type MetadataKind } from '../rpm/package-metadata.js';
import type { PackageMetadataRecord } from '../store/records.js';
import { type CacheIndex, PlainLogs, readCache, readRange, writeCacheIndex } from './repodata-cache.js';

interface DataFile {
  readonly type: string;
  readonly sha256: string;
  readonly openSha256: string;
  readonly size: number;
  readonly openSize: number;
}

/** A gzip file written from members, with its compressed and uncompressed digests taken as it goes. */
class MemberWriter {
  private readonly packed: Hash = createHash('sha256');
  private readonly plain: Hash = createHash('sha256');
  /** Bytes written so far (the offset of the next member), and plain bytes hashed. */
  size = 0;
  openSize = 0;
  private constructor(
    readonly tmp: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(tmp: string): Promise<MemberWriter> {
    return new MemberWriter(tmp, await open(tmp, 'w', 0o644));
  }

  async writePacked(packed: Uint8Array): Promise<void> {
    this.packed.update(packed);
    this.size += packed.length;
    await this.handle.writeFile(packed);
  }

  /** The plain text the members hold, in the same order (hashed, not written: the file is gzip). */
  hashPlain(plain: Uint8Array): void {
    this.plain.update(plain);
    this.openSize += plain.length;
  }

  async writeText(text: string): Promise<void> {
    const plain = Buffer.from(text, 'utf8');
    await this.writePacked(gzipSync(plain));
    this.hashPlain(plain);
  }

  /** Close (synced), and move to repodata/SHA-TYPE.xml.gz (createrepo_c's names). */
  async finish(type: string): Promise<DataFile> {
    await this.handle.sync();
    await this.handle.close();
    const sha256 = this.packed.digest('hex');
    await rename(this.tmp, path.join(path.dirname(this.tmp), `${sha256}-${type}.xml.gz`));
    return { type, sha256, openSha256: this.plain.digest('hex'), size: this.size, openSize: this.openSize };
  }
}

/** Some package's stored entries were not found (recorded before they were derived): derive, then retry. */
export class MetadataMissing extends Error {}

type Key = { readonly sha256: string; readonly file: string };
const keyOf = (p: Key) => `${p.sha256}/${p.file}`;

/**
 * Write an arch's repodata/ from per-package entries: primary, filelists and other as gzip member streams
 * (header, one member per package, footer) with both digests computed in the same pass, updateinfo when there
 * are errata, and repomd.xml in createrepo_c's layout. Reads no package. Entries the previous snapshot had are
 * copied from its .xml.gz and hashed from the plain log in runs when its cache is valid (repodata-cache.ts);
 * the rest come from `fetch` (the database) and are appended to the log. Entry order is free in rpm-md: kept
 * entries stay in their order, new ones follow.
 */
export async function writeRepodata(o: {
  /** The arch folder (repodata/ is made in it). */
  readonly dir: string;
  readonly packages: readonly Key[];
  /** The previous snapshot's arch folder, whose cache may be reused (null: none). */
  readonly previous: string | null;
  /** The repository's plain-log folder for this arch. */
  readonly logDir: string;
  readonly fetch: (keys: readonly Key[]) => AsyncIterable<readonly PackageMetadataRecord[]>;
  readonly updateinfo: string | null;
  /** Seconds since the epoch: repomd's revision and timestamps. */
  readonly now: number;
}): Promise<{ repomd: Buffer; reused: number; fetched: number }> {
  const repodata = path.join(o.dir, 'repodata');
  await mkdir(repodata, { recursive: true });
  const wanted = new Set(o.packages.map(keyOf));
  let cache = o.previous ? await readCache(o.previous) : null;
  let old = cache ? await PlainLogs.open(o.logDir, cache.gen) : null;
  if (cache && old && !logsHold(cache, old)) {
    await old.close();
    [cache, old] = [null, null]; // its log is gone or short: start over from the database
  }
  const keptAt: number[] = []; // indexes into the previous snapshot's entries, in its order
  const kept = new Set<string>();
  for (const [i, k] of (cache?.keys ?? []).entries()) {
    if (!wanted.has(k) || kept.has(k)) continue;
    kept.add(k);
    keptAt.push(i);
  }
  const fresh = o.packages.filter((p) => !kept.has(keyOf(p)));
  // A new log generation when there is none to reuse or less than half of it is still live.
  const live = METADATA_KINDS.reduce((sum, kind) => sum + keptAt.reduce((s, i) => s + cache!.len[kind][i]!, 0), 0);
  const total = old ? METADATA_KINDS.reduce((sum, kind) => sum + old!.size(kind), 0) : 0;
  const logs = old && live * 2 >= total ? old : await PlainLogs.open(o.logDir, PlainLogs.newGeneration());
  const writers = {} as Record<MetadataKind, MemberWriter>;
  const index = {
    keys: keptAt.map((i) => cache!.keys[i]!),
    gz: {} as Record<MetadataKind, number[]>,
    at: {} as Record<MetadataKind, number[]>,
    len: {} as Record<MetadataKind, number[]>,
  };
  try {
    for (const kind of METADATA_KINDS) {
      const w = await MemberWriter.create(path.join(repodata, `.${kind}.tmp`));
      writers[kind] = w;
      await w.writeText(metadataHeader(kind, o.packages.length));
      [index.gz[kind], index.at[kind], index.len[kind]] = [[], [], []];
      if (!cache || !old) continue;
      const [gz, at, len] = [cache.gz[kind], cache.at[kind], cache.len[kind]];
      // Members: runs of consecutive entries of the previous .xml.gz.
      const gzFile = path.join(cache.dir, 'repodata', cache.files[kind]);
      for (const [a, b] of runsOf(keptAt, (x, y) => y === x + 1)) {
        for (let j = a; j < b; j++) index.gz[kind].push(w.size + gz[keptAt[j]!]! - gz[keptAt[a]!]!);
        for await (const piece of readRange(gzFile, gz[keptAt[a]!]!, gz[keptAt[b - 1]! + 1]!))
          await w.writePacked(piece);
      }
      // Plain text: runs of adjacent bytes of the log (copied into a new generation when compacting).
      for (const [a, b] of runsOf(keptAt, (x, y) => at[y] === at[x]! + len[x]!)) {
        const from = at[keptAt[a]!]!;
        const to = at[keptAt[b - 1]!]! + len[keptAt[b - 1]!]!;
        const moved = logs === old ? from : logs.size(kind);
        for (let j = a; j < b; j++) {
          index.at[kind].push(moved + at[keptAt[j]!]! - from);
          index.len[kind].push(len[keptAt[j]!]!);
        }
        for await (const piece of old.read(kind, from, to - from)) {
          w.hashPlain(piece);
          if (logs !== old) await logs.append(kind, piece);
        }
      }
    }
    let fetched = 0;
    for await (const chunk of o.fetch(fresh)) {
      fetched += chunk.length;
      index.keys.push(...chunk.map(keyOf));
      for (const kind of METADATA_KINDS) {
        const w = writers[kind];
        let gzAt = w.size;
        for (const e of chunk) {
          index.gz[kind].push(gzAt);
          gzAt += e.gz[kind].length;
        }
        await w.writePacked(Buffer.concat(chunk.map((e) => e.gz[kind])));
        const plain = Buffer.concat(chunk.map((e) => e.xml[kind]));
        w.hashPlain(plain);
        let logAt = await logs.append(kind, plain);
        for (const e of chunk) {
          index.at[kind].push(logAt);
          index.len[kind].push(e.xml[kind].length);
          logAt += e.xml[kind].length;
        }
      }
    }
    if (fetched !== fresh.length)
      throw new MetadataMissing(`${fresh.length - fetched} of ${o.packages.length} packages have no stored metadata`);
    const data: DataFile[] = [];
    const files = {} as Record<MetadataKind, string>;
    // The three files are synced side by side: the file system can commit them together.
    const done = await Promise.allSettled(
      METADATA_KINDS.map(async (kind) => {
        index.gz[kind].push(writers[kind].size);
        await writers[kind].writeText(metadataFooter(kind));
        return writers[kind].finish(kind);
      }),
    );
    for (const [i, kind] of METADATA_KINDS.entries()) {
      const r = done[i]!;
      if (r.status === 'rejected') throw r.reason;
      const d = r.value;
      files[kind] = `${d.sha256}-${kind}.xml.gz`;
      data.push(d);
    }
    await writeCacheIndex(o.dir, { gen: logs.gen, files, ...index });
    if (o.updateinfo !== null) {
      const w = await MemberWriter.create(path.join(repodata, '.updateinfo.tmp'));
      await w.writeText(o.updateinfo);
      data.push(await w.finish('updateinfo'));
    }
    const xml = Buffer.from(repomdXml(data, o.now), 'utf8');
    const h = await open(path.join(repodata, 'repomd.xml'), 'w', 0o644);
    await h.writeFile(xml);
    await h.sync();
    await h.close();
    return { repomd: xml, reused: kept.size, fetched };
  } finally {
    await logs.close();
    if (old && old !== logs) await old.close();
    // The generation in use and the previous snapshot's (a failed publish is retried against it) stay.
    await PlainLogs.prune(o.logDir, new Set([logs.gen, ...(cache ? [cache.gen] : [])]));
  }
}

/** [from, to) index ranges of `xs` where each next element `joins` the one before. */
function runsOf(xs: readonly number[], joins: (x: number, y: number) => boolean): [number, number][] {
  const runs: [number, number][] = [];
  for (let j = 0; j < xs.length; j++) {
    const last = runs[runs.length - 1];
    if (last && joins(xs[j - 1]!, xs[j]!)) last[1] = j + 1;
    else runs.push([j, j + 1]);
  }
  return runs;
}

/** Whether a generation's logs are long enough for every entry the cache names. */
function logsHold(cache: CacheIndex, logs: PlainLogs): boolean {
  for (const kind of METADATA_KINDS) {
    const [at, len] = [cache.at[kind], cache.len[kind]];
    for (let i = 0; i < cache.keys.length; i++) if (at[i]! + len[i]! > logs.size(kind)) return false;
  }
  return true;
}

function repomdXml(data: readonly DataFile[], now: number): string {
  const records = data.map(
    (d) => `  <data type="${d.type}">
    <checksum type="sha256">${d.sha256}</checksum>
    <open-checksum type="sha256">${d.openSha256}</open-checksum>
    <location href="repodata/${d.sha256}-${d.type}.xml.gz"/>
    <timestamp>${now}</timestamp>
    <size>${d.size}</size>
    <open-size>${d.openSize}</open-size>
  </data>
`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>${now}</revision>
${records.join('')}</repomd>
`;
}
