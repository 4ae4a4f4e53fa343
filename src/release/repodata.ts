import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { LenixError } from '../core/errors.js';
import { METADATA_KINDS, metadataFooter, metadataHeader, type MetadataKind } from '../rpm/package-metadata.js';
import type { PackageMetadataRecord } from '../store/records.js';

interface DataFile {
  readonly type: string;
  readonly sha256: string;
  readonly openSha256: string;
  readonly size: number;
  readonly openSize: number;
}

/** A gzip file written from members whose compressed and uncompressed digests are taken as it goes. */
class MemberWriter {
  private readonly packed: Hash = createHash('sha256');
  private readonly plain: Hash = createHash('sha256');
  private size = 0;
  private openSize = 0;
  private constructor(
    readonly tmp: string,
    private readonly handle: Awaited<ReturnType<typeof open>>,
  ) {}

  static async create(tmp: string): Promise<MemberWriter> {
    return new MemberWriter(tmp, await open(tmp, 'w', 0o644));
  }

  /** Members (gzip) with the plain text each holds. */
  async write(gz: readonly Uint8Array[], plain: readonly Uint8Array[]): Promise<void> {
    const packed = gz.length === 1 ? gz[0]! : Buffer.concat(gz);
    for (const p of plain) {
      this.plain.update(p);
      this.openSize += p.length;
    }
    this.packed.update(packed);
    this.size += packed.length;
    await this.handle.writeFile(packed);
  }

  async writeText(text: string): Promise<void> {
    const plain = Buffer.from(text, 'utf8');
    await this.write([gzipSync(plain)], [plain]);
  }

  /** Close, and move to repodata/SHA-TYPE.xml.gz (createrepo_c's unique names). */
  async finish(type: string): Promise<DataFile> {
    await this.handle.sync();
    await this.handle.close();
    const sha256 = this.packed.digest('hex');
    await rename(this.tmp, path.join(path.dirname(this.tmp), `${sha256}-${type}.xml.gz`));
    return { type, sha256, openSha256: this.plain.digest('hex'), size: this.size, openSize: this.openSize };
  }
}

/**
 * Write an arch's repodata/ from stored per-package entries: primary, filelists and other as gzip member
 * streams (header, one member per package, footer) with both digests computed in the same pass, updateinfo
 * when there are errata, and repomd.xml in createrepo_c's layout. Reads no package. Returns repomd.xml.
 */
export async function writeRepodata(o: {
  /** The arch folder (repodata/ is made in it). */
  readonly dir: string;
  readonly count: number;
  readonly entries: AsyncIterable<readonly PackageMetadataRecord[]>;
  readonly updateinfo: string | null;
  /** Seconds since the epoch: repomd's revision and timestamps. */
  readonly now: number;
}): Promise<Buffer> {
  const repodata = path.join(o.dir, 'repodata');
  await mkdir(repodata, { recursive: true });
  const writers = {} as Record<MetadataKind, MemberWriter>;
  for (const kind of METADATA_KINDS) {
    writers[kind] = await MemberWriter.create(path.join(repodata, `.${kind}.tmp`));
    await writers[kind].writeText(metadataHeader(kind, o.count));
  }
  let written = 0;
  for await (const chunk of o.entries) {
    written += chunk.length;
    for (const kind of METADATA_KINDS)
      await writers[kind].write(
        chunk.map((e) => e.gz[kind]),
        chunk.map((e) => e.xml[kind]),
      );
  }
  if (written !== o.count)
    throw new LenixError('INTERNAL', `repository metadata for ${o.count} packages found ${written} stored entries`);
  const data: DataFile[] = [];
  for (const kind of METADATA_KINDS) {
    await writers[kind].writeText(metadataFooter(kind));
    data.push(await writers[kind].finish(kind));
  }
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
  return xml;
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
