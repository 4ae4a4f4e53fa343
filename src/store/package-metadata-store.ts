import type { Kysely, Selectable } from 'kysely';
import type { PackageMetadataRecord } from './records.js';
import type { Database } from './schema.js';

/** Rows fetched per query: well under SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 500;

const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function toRecord(r: Selectable<Database['package_metadata']>): PackageMetadataRecord {
  return {
    sha256: r.sha256,
    file: r.file,
    size: { primary: Number(r.primary_size), filelists: Number(r.filelists_size), other: Number(r.other_size) },
    gz: { primary: bytes(r.primary_gz), filelists: bytes(r.filelists_gz), other: bytes(r.other_gz) },
  };
}

export const metadataKey = (p: { sha256: string; file: string }) => `${p.sha256}/${p.file}`;

/**
 * Each package's repository metadata, derived once (content-addressed by the package digest and the file name
 * its entry locates). Entries never change: a second put of the same key keeps the first.
 */
export class PackageMetadataStore {
  constructor(readonly db: Kysely<Database>) {}

  async put(entries: readonly PackageMetadataRecord[], now: number): Promise<void> {
    for (let i = 0; i < entries.length; i += 50) {
      await this.db
        .insertInto('package_metadata')
        .values(
          entries.slice(i, i + 50).map((e) => ({
            sha256: e.sha256,
            file: e.file,
            primary_size: e.size.primary,
            filelists_size: e.size.filelists,
            other_size: e.size.other,
            primary_gz: e.gz.primary,
            filelists_gz: e.gz.filelists,
            other_gz: e.gz.other,
            created_at: now,
          })),
        )
        .onConflict((oc) => oc.columns(['sha256', 'file']).doNothing())
        .execute();
    }
  }

  /** Which of these packages have no stored metadata yet. */
  async missing<T extends { sha256: string; file: string }>(packages: readonly T[]): Promise<T[]> {
    const have = new Set<string>();
    for (let i = 0; i < packages.length; i += CHUNK) {
      const part = packages.slice(i, i + CHUNK);
      const rows = await this.db
        .selectFrom('package_metadata')
        .select(['sha256', 'file'])
        .where('sha256', 'in', [...new Set(part.map((p) => p.sha256))])
        .execute();
      for (const r of rows) have.add(metadataKey(r));
    }
    return packages.filter((p) => !have.has(metadataKey(p)));
  }

  /**
   * The stored entries of these packages, in their order, a chunk at a time (a 50,000-package repository is
   * never held in memory at once). A package without stored metadata is left out: call `missing` first.
   */
  async *read(packages: readonly { sha256: string; file: string }[]): AsyncGenerator<PackageMetadataRecord[]> {
    for (let i = 0; i < packages.length; i += CHUNK) {
      const part = packages.slice(i, i + CHUNK);
      const rows = await this.db
        .selectFrom('package_metadata')
        .selectAll()
        .where('sha256', 'in', [...new Set(part.map((p) => p.sha256))])
        .execute();
      const byKey = new Map(rows.map((r) => [metadataKey(r), r]));
      const out: PackageMetadataRecord[] = [];
      for (const p of part) {
        const r = byKey.get(metadataKey(p));
        if (r) out.push(toRecord(r));
      }
      yield out;
    }
  }
}
