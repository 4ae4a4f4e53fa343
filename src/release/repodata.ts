import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { METADATA_KINDS, metadataFooter, metadataHeader, type MetadataKind } from '../rpm/package-metadata.js';
import type { PackageMetadataRecord } from '../store/records.js';
import { type CacheIndex, PlainLogs, readCache, writeCacheEntries, writeCacheHead } from './repodata-cache.js';
import type { EntryLocation, PackLease } from './entry-pack.js';
import { type DigestSegment, type DigestStream, digestStream, openDigest } from './digest-pool.js';

interface DataFile {
  readonly type: string;
  readonly sha256: string;
  readonly openSha256: string;
  readonly size: number;
  readonly openSize: number;
}

/** Some package's stored entries were not found (recorded before they were derived): derive, then retry. */
export class MetadataMissing extends Error {}

/** A write that read the entry pack failed: drop the pack (a cache) and write again from the database. */
export class PackReadFailed extends Error {}

/** Worker lanes of each kind's [plain, packed] streams: on two workers, primary's plain text (the largest) beside
 * the other kinds' .xml.gz, primary's .xml.gz beside their plain text; on four, one lane each. */
const LANES: Record<MetadataKind, readonly [number, number]> = { primary: [0, 1], filelists: [3, 2], other: [5, 4] };

type Key = { readonly sha256: string; readonly file: string };
/** Each entry's key, made once per record (a publisher passes the same records from one publish to the next). */
const keys = new WeakMap<Key, string>();
const keyOf = (p: Key) => {
  let k = keys.get(p);
  if (k === undefined) {
    k = `${p.sha256}/${p.file}`;
    keys.set(p, k);
  }
  return k;
};

/**
 * Write an arch's repodata/ from per-package entries: primary, filelists and other as gzip member streams
 * (header, one member per package, footer) with both digests computed in the same pass, updateinfo when there
 * are errata, and repomd.xml in createrepo_c's layout. Reads no package. Entries the previous snapshot had are
 * copied from its .xml.gz and hashed from the plain log in runs when its cache is valid (repodata-cache.ts);
 * new entries this server derived come from its entry pack in runs (`pack`, entry-pack.ts), the rest from
 * `fetch` (the database), and both are appended to the log. Entry order is free in rpm-md: kept
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
  /** Entries this server derived, read before the database (entry-pack.ts). */
  readonly pack?: { lease(keys: readonly string[]): PackLease | null };
  readonly updateinfo: string | null;
  /** Seconds since the epoch: repomd's revision and timestamps. */
  readonly now: number;
}): Promise<{ repomd: Buffer; reused: number; fetched: number; packed: number }> {
  const repodata = path.join(o.dir, 'repodata');
  const tmpOf = (kind: MetadataKind) => path.join(repodata, `.${kind}.tmp`);
  await mkdir(repodata, { recursive: true });
  const wantedKeys = o.packages.map(keyOf);
  const wanted = new Set(wantedKeys);
  let cache = o.previous ? await readCache(o.previous) : null;
  let old = cache ? await PlainLogs.open(o.logDir, cache.gen) : null;
  if (cache && old && !logsHold(cache, old)) {
    await old.close();
    [cache, old] = [null, null]; // its log is gone or short: start over from the database
  }
  // Indexes into the previous snapshot's entries, in its order, of those still wanted (each once); what is left
  // in `wanted` is new.
  const keptAt: number[] = [];
  const previousKeys = cache?.keys ?? [];
  for (let i = 0; i < previousKeys.length; i++) if (wanted.delete(previousKeys[i]!)) keptAt.push(i);
  const fresh = o.packages.filter((_, j) => wanted.has(wantedKeys[j]!));
  // A new log generation when there is none to reuse or less than half of it is still live.
  const live = METADATA_KINDS.reduce((sum, kind) => sum + keptAt.reduce((s, i) => s + cache!.len[kind][i]!, 0), 0);
  const total = old ? METADATA_KINDS.reduce((sum, kind) => sum + old!.size(kind), 0) : 0;
  const logs = old && live * 2 >= total ? old : await PlainLogs.open(o.logDir, PlainLogs.newGeneration());
  // New entries the pack has are read from it, in its order (runs of entries derived together); the rest come
  // from the database. Held from here (nothing below awaits before the try that releases it).
  const lease = fresh.length > 0 ? (o.pack?.lease(fresh.map(keyOf)) ?? null) : null;
  const inPack: { key: string; at: EntryLocation }[] = [];
  const fromDb: Key[] = [];
  for (const [i, p] of fresh.entries()) {
    const at = lease?.found[i];
    if (at) inPack.push({ key: keyOf(p), at });
    else fromDb.push(p);
  }
  inPack.sort((a, b) => a.at[0]! - b.at[0]!);
  const n = keptAt.length + fresh.length;
  const index = {
    keys: keptAt.map((i) => previousKeys[i]!),
    gz: {} as Record<MetadataKind, Float64Array>,
    at: {} as Record<MetadataKind, Float64Array>,
    len: {} as Record<MetadataKind, Float64Array>,
  };
  // Each kind's .xml.gz and its plain text as segments in the same order: header, kept entries, new ones, footer.
  const packed = {} as Record<MetadataKind, DigestSegment[]>;
  const plain = {} as Record<MetadataKind, DigestSegment[]>;
  const gzAt = {} as Record<MetadataKind, number>;
  const streams: Partial<Record<MetadataKind, { packed: DigestStream; plain: DigestStream }>> = {};
  try {
    for (const kind of METADATA_KINDS) {
      const header = Buffer.from(metadataHeader(kind, o.packages.length), 'utf8');
      const headerGz = gzipSync(header);
      packed[kind] = [{ bytes: headerGz }];
      plain[kind] = [{ bytes: header }];
      gzAt[kind] = headerGz.length;
      const [gzOut, atOut, lenOut] = [new Float64Array(n + 1), new Float64Array(n), new Float64Array(n)];
      [index.gz[kind], index.at[kind], index.len[kind]] = [gzOut, atOut, lenOut];
      if (!cache || !old) continue;
      const [gz, at, len] = [cache.gz[kind], cache.at[kind], cache.len[kind]];
      // Members: runs of consecutive entries of the previous .xml.gz.
      const gzFile = path.join(cache.dir, 'repodata', cache.files[kind]);
      for (const [a, b] of runsOf(keptAt, (x, y) => y === x + 1)) {
        const [from, to] = [gz[keptAt[a]!]!, gz[keptAt[b - 1]! + 1]!];
        for (let j = a; j < b; j++) gzOut[j] = gzAt[kind] + gz[keptAt[j]!]! - from;
        packed[kind].push({ file: gzFile, from, to });
        gzAt[kind] += to - from;
      }
      // Plain text: runs of adjacent bytes of the log (copied into a new generation first when compacting).
      for (const [a, b] of runsOf(keptAt, (x, y) => at[y] === at[x]! + len[x]!)) {
        const from = at[keptAt[a]!]!;
        const to = at[keptAt[b - 1]!]! + len[keptAt[b - 1]!]!;
        let moved = from;
        if (logs !== old) {
          moved = logs.size(kind);
          for await (const piece of old.read(kind, from, to - from)) await logs.append(kind, [piece]);
        }
        for (let j = a; j < b; j++) {
          atOut[j] = moved + at[keptAt[j]!]! - from;
          lenOut[j] = len[keptAt[j]!]!;
        }
        plain[kind].push({ file: logs.file(kind), from: moved, to: moved + to - from });
      }
    }
    // Entries from the pack, after the kept ones: members and text in runs of its files, the text also onto
    // the log (from where it stands now: reserved here, written by the stream).
    const teeAt = {} as Record<MetadataKind, number>;
    for (const [k, kind] of METADATA_KINDS.entries()) {
      teeAt[kind] = logs.size(kind);
      if (!lease || inPack.length === 0) continue;
      const [gzOut, atOut, lenOut] = [index.gz[kind], index.at[kind], index.len[kind]];
      const files = lease.files[kind];
      for (const [i, { at }] of inPack.entries()) {
        const j = keptAt.length + i;
        const [gzLen, textLen] = [at[k * 4 + 1]!, at[k * 4 + 3]!];
        gzOut[j] = gzAt[kind];
        gzAt[kind] += gzLen;
        atOut[j] = logs.reserve(kind, textLen);
        lenOut[j] = textLen;
        extend(packed[kind], files.gz, at[k * 4]!, gzLen, false);
        extend(plain[kind], files.text, at[k * 4 + 2]!, textLen, true);
      }
    }
    index.keys.push(...inPack.map((e) => e.key));
    // Each kind's two streams open on the workers with what is on disk (their kept entries are hashed, and
    // copied, while the database is read); new entries are pushed to them as they come, as the stored gzip
    // members: the plain stream inflates them, hashes the text and writes it onto the log. Lanes spread the six
    // streams over the workers (primary's plain text is the largest).
    for (const kind of METADATA_KINDS) {
      const [plainLane, packedLane] = LANES[kind];
      streams[kind] = {
        packed: openDigest({ segments: packed[kind], out: tmpOf(kind) }, packedLane),
        plain: openDigest(
          { segments: plain[kind], out: null, tee: { file: logs.file(kind), at: teeAt[kind] }, inflate: true },
          plainLane,
        ),
      };
    }
    let j = keptAt.length + inPack.length;
    for await (const chunk of o.fetch(fromDb)) {
      if (j + chunk.length > n) break; // more than asked for: counted below
      index.keys.push(...chunk.map(keyOf));
      for (const kind of METADATA_KINDS) {
        const [gzOut, atOut, lenOut] = [index.gz[kind], index.at[kind], index.len[kind]];
        for (const [k, e] of chunk.entries()) {
          gzOut[j + k] = gzAt[kind];
          gzAt[kind] += e.gz[kind].length;
          atOut[j + k] = logs.reserve(kind, e.size[kind]);
          lenOut[j + k] = e.size[kind];
        }
        const members = chunk.map((e) => e.gz[kind]);
        await streams[kind]!.packed.push(members);
        await streams[kind]!.plain.push(
          members,
          chunk.map((e) => e.size[kind]),
        );
      }
      j += chunk.length;
    }
    if (j !== n || index.keys.length !== n)
      throw new MetadataMissing(`${n - j} of ${o.packages.length} packages have no stored metadata`);
    for (const kind of METADATA_KINDS) index.gz[kind][n] = gzAt[kind];
    // The streams' ends, side by side; the cache's entries meanwhile.
    // Every end is waited for, failed or not, before this returns or throws: a caller that writes again into
    // the same folder (the publisher after PackReadFailed) must not meet a rename or cache write of this one.
    const [digests] = await settleAll([
      settleAll(
        METADATA_KINDS.map(async (kind) => {
          const footer = Buffer.from(metadataFooter(kind), 'utf8');
          const s = streams[kind]!;
          const [text, gz] = await settleAll([
            s.plain.end([{ bytes: footer }]),
            s.packed.end([{ bytes: gzipSync(footer) }]),
          ]);
          await rename(tmpOf(kind), path.join(repodata, `${gz.sha256}-${kind}.xml.gz`));
          return { type: kind, sha256: gz.sha256, size: gz.size, openSha256: text.sha256, openSize: text.size };
        }),
      ),
      writeCacheEntries(o.dir, index),
    ]);
    const data: DataFile[] = [...digests];
    const files = Object.fromEntries(digests.map((d) => [d.type, `${d.sha256}-${d.type}.xml.gz`])) as Record<
      MetadataKind,
      string
    >;
    await writeCacheHead(o.dir, { gen: logs.gen, files, ...index });
    if (o.updateinfo !== null) {
      const text = Buffer.from(o.updateinfo, 'utf8');
      const gz = gzipSync(text);
      const out = path.join(repodata, '.updateinfo.tmp');
      const d = await digestStream({ segments: [{ bytes: gz }], out });
      await rename(out, path.join(repodata, `${d.sha256}-updateinfo.xml.gz`));
      data.push({
        type: 'updateinfo',
        sha256: d.sha256,
        size: d.size,
        openSha256: createHash('sha256').update(text).digest('hex'),
        openSize: text.length,
      });
    }
    const xml = Buffer.from(repomdXml(data, o.now), 'utf8');
    await writeFile(path.join(repodata, 'repomd.xml'), xml, { mode: 0o644 });
    return { repomd: xml, reused: keptAt.length, fetched: fromDb.length, packed: inPack.length };
  } catch (err) {
    if (inPack.length === 0 || err instanceof MetadataMissing) throw err;
    throw new PackReadFailed(`writing from the entry pack: ${(err as Error).message}`, { cause: err });
  } finally {
    // Streams not ended (a failed read) are dropped; ended ones are closed already.
    for (const st of Object.values(streams)) {
      st.packed.cancel();
      st.plain.cancel();
    }
    lease?.release();
    await logs.close();
    if (old && old !== logs) await old.close();
    // The generation in use and the previous snapshot's (a failed publish is retried against it) stay.
    await PlainLogs.prune(o.logDir, new Set([logs.gen, ...(cache ? [cache.gen] : [])]));
  }
}

/** Like Promise.all, but settles only once every promise has: then the values, or the first rejection. */
async function settleAll<T extends readonly unknown[]>(
  ps: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(ps);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Add [from, from + length) of `file` to a stream's segments, joining the last when it ends where this starts. */
function extend(list: DigestSegment[], file: string, from: number, length: number, tee: boolean): void {
  const last = list[list.length - 1];
  if (last && 'file' in last && last.file === file && last.to === from)
    list[list.length - 1] = { ...last, to: from + length };
  else list.push({ file, from, to: from + length, tee });
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
