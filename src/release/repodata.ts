import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { METADATA_KINDS, metadataFooter, metadataHeader, type MetadataKind } from '../rpm/package-metadata.js';
import type { PackageMetadataRecord } from '../store/records.js';
import { CACHE_DIR, plainFile, readCache, readRange, writeCacheIndex } from './repodata-cache.js';

interface DataFile {
  readonly type: string;
  readonly sha256: string;
  readonly openSha256: string;
  readonly size: number;
  readonly openSize: number;
}

/**
 * A gzip file written from members, with its compressed and uncompressed digests taken as it goes, and (for
 * the next publish) the plain text beside it in the cache.
 */
class MemberWriter {
  private readonly packed: Hash = createHash('sha256');
  private readonly plain: Hash = createHash('sha256');
  /** Bytes written so far: the offset of the next entry in the .xml.gz and in the plain file. */
  size = 0;
  openSize = 0;
  private constructor(
    readonly tmp: string,
    private readonly handle: FileHandle,
    private readonly plainHandle: FileHandle | null,
  ) {}

  static async create(tmp: string, plainFile: string | null): Promise<MemberWriter> {
    return new MemberWriter(tmp, await open(tmp, 'w', 0o644), plainFile ? await open(plainFile, 'w', 0o600) : null);
  }

  async writePacked(packed: Uint8Array): Promise<void> {
    this.packed.update(packed);
    this.size += packed.length;
    await this.handle.writeFile(packed);
  }

  async writePlain(plain: Uint8Array): Promise<void> {
    this.plain.update(plain);
    this.openSize += plain.length;
    await this.plainHandle?.writeFile(plain);
  }

  /** Members (gzip) with the plain text each holds. */
  async write(gz: readonly Uint8Array[], plain: readonly Uint8Array[]): Promise<void> {
    await this.writePacked(gz.length === 1 ? gz[0]! : Buffer.concat(gz));
    await this.writePlain(plain.length === 1 ? plain[0]! : Buffer.concat(plain));
  }

  async writeText(text: string): Promise<void> {
    const plain = Buffer.from(text, 'utf8');
    await this.write([gzipSync(plain)], [plain]);
  }

  /** Close (the .xml.gz synced, the cache not), and move to repodata/SHA-TYPE.xml.gz (createrepo_c's names). */
  async finish(type: string): Promise<DataFile> {
    await this.handle.sync();
    await this.handle.close();
    await this.plainHandle?.close();
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
 * copied from its files in runs when its cache is valid (repodata-cache.ts); the rest come from `fetch` (the
 * database). Entry order is free in rpm-md: kept entries stay in their order, new ones follow.
 */
export async function writeRepodata(o: {
  /** The arch folder (repodata/ is made in it). */
  readonly dir: string;
  readonly packages: readonly Key[];
  /** The previous snapshot's arch folder, whose cache may be reused (null: none). */
  readonly previous: string | null;
  readonly fetch: (keys: readonly Key[]) => AsyncIterable<readonly PackageMetadataRecord[]>;
  readonly updateinfo: string | null;
  /** Seconds since the epoch: repomd's revision and timestamps. */
  readonly now: number;
}): Promise<{ repomd: Buffer; reused: number; fetched: number }> {
  const repodata = path.join(o.dir, 'repodata');
  await mkdir(repodata, { recursive: true });
  await mkdir(path.join(o.dir, CACHE_DIR), { recursive: true });
  const wanted = new Set(o.packages.map(keyOf));
  const cache = o.previous ? await readCache(o.previous) : null;
  const runs: [number, number][] = []; // [from, to) entry indexes of the previous files kept
  const kept = new Set<string>();
  for (const [i, k] of (cache?.keys ?? []).entries()) {
    if (!wanted.has(k) || kept.has(k)) continue;
    kept.add(k);
    const last = runs[runs.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  }
  const fresh = o.packages.filter((p) => !kept.has(keyOf(p)));
  const writers = {} as Record<MetadataKind, MemberWriter>;
  const index = {
    keys: [] as string[],
    gz: {} as Record<MetadataKind, number[]>,
    plain: {} as Record<MetadataKind, number[]>,
  };
  for (const kind of METADATA_KINDS) {
    writers[kind] = await MemberWriter.create(path.join(repodata, `.${kind}.tmp`), plainFile(o.dir, kind));
    await writers[kind].writeText(metadataHeader(kind, o.packages.length));
    index.gz[kind] = [];
    index.plain[kind] = [];
  }
  for (const [from, to] of runs) {
    index.keys.push(...cache!.keys.slice(from, to));
    for (const kind of METADATA_KINDS) {
      const w = writers[kind];
      const [gz, plain] = [cache!.gz[kind]!, cache!.plain[kind]!];
      for (let i = from; i < to; i++) {
        index.gz[kind].push(w.size + gz[i]! - gz[from]!);
        index.plain[kind].push(w.openSize + plain[i]! - plain[from]!);
      }
      for await (const b of readRange(path.join(cache!.dir, 'repodata', cache!.files[kind]!), gz[from]!, gz[to]!))
        await w.writePacked(b);
      for await (const b of readRange(plainFile(cache!.dir, kind), plain[from]!, plain[to]!)) await w.writePlain(b);
    }
  }
  let fetched = 0;
  for await (const chunk of o.fetch(fresh)) {
    fetched += chunk.length;
    for (const e of chunk) {
      index.keys.push(keyOf(e));
      for (const kind of METADATA_KINDS) {
        index.gz[kind].push(writers[kind].size);
        index.plain[kind].push(writers[kind].openSize);
      }
    }
    for (const kind of METADATA_KINDS)
      await writers[kind].write(
        chunk.map((e) => e.gz[kind]),
        chunk.map((e) => e.xml[kind]),
      );
  }
  if (fetched !== fresh.length)
    throw new MetadataMissing(`${fresh.length - fetched} of ${o.packages.length} packages have no stored metadata`);
  const data: DataFile[] = [];
  const files = {} as Record<MetadataKind, string>;
  for (const kind of METADATA_KINDS) {
    index.gz[kind].push(writers[kind].size);
    index.plain[kind].push(writers[kind].openSize);
    await writers[kind].writeText(metadataFooter(kind));
    const d = await writers[kind].finish(kind);
    files[kind] = `${d.sha256}-${kind}.xml.gz`;
    data.push(d);
  }
  await writeCacheIndex(o.dir, { files, ...index });
  if (o.updateinfo !== null) {
    const w = await MemberWriter.create(path.join(repodata, '.updateinfo.tmp'), null);
    await w.writeText(o.updateinfo);
    data.push(await w.finish('updateinfo'));
  }
  const xml = Buffer.from(repomdXml(data, o.now), 'utf8');
  const h = await open(path.join(repodata, 'repomd.xml'), 'w', 0o644);
  await h.writeFile(xml);
  await h.sync();
  await h.close();
  return { repomd: xml, reused: kept.size, fetched };
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
