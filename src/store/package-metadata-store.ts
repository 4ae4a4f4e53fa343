import type SQLite from 'better-sqlite3';
import type { Kysely, Selectable } from 'kysely';
import type { PackageMetadataRecord } from './records.js';
import type { Database } from './schema.js';
import { sqliteFileOf } from './statements.js';

/** Rows fetched per query: well under SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 500;

const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function toRecord(r: Selectable<Database['package_metadata']>): PackageMetadataRecord {
  return {
    sha256: r.sha256,
    file: r.file,
    xml: { primary: bytes(r.primary_xml), filelists: bytes(r.filelists_xml), other: bytes(r.other_xml) },
    gz: { primary: bytes(r.primary_gz), filelists: bytes(r.filelists_gz), other: bytes(r.other_gz) },
  };
}

export const metadataKey = (p: { sha256: string; file: string }) => `${p.sha256}/${p.file}`;

/** One stored column of entries: a kind's plain text or its gzip member. */
export type EntryColumn = `${'primary' | 'filelists' | 'other'}_${'xml' | 'gz'}`;
const ENTRY_COLUMNS: readonly EntryColumn[] = [
  'primary_xml',
  'primary_gz',
  'filelists_xml',
  'filelists_gz',
  'other_xml',
  'other_gz',
];

/**
 * One column of these packages' entries, in their order, read synchronously on a SQLite connection of its own
 * (a digest worker's: entries are written once and never change, so any connection reads the same bytes). Each
 * entry is handed to `each` as it is read; the count found is returned (a package without an entry is skipped,
 * and the caller compares the count).
 */
export function readEntryColumn(
  handle: SQLite.Database,
  packages: readonly { sha256: string; file: string }[],
  column: EntryColumn,
  each: (bytes: Uint8Array) => void,
): number {
  if (!ENTRY_COLUMNS.includes(column)) throw new Error(`not an entry column: ${column}`);
  let found = 0;
  for (let i = 0; i < packages.length; i += CHUNK) {
    const part = packages.slice(i, i + CHUNK);
    const digests = [...new Set(part.map((p) => p.sha256))];
    const rows = handle
      .prepare(
        `select sha256, file, ${column} as bytes from package_metadata where sha256 in (${digests.map(() => '?').join(', ')})`,
      )
      .all(digests) as { sha256: string; file: string; bytes: Uint8Array }[];
    const byKey = new Map(rows.map((r) => [metadataKey(r), r.bytes]));
    for (const p of part) {
      const bytes = byKey.get(metadataKey(p));
      if (bytes === undefined) continue;
      each(bytes);
      found++;
    }
  }
  return found;
}

/**
 * Each package's repository metadata, derived once (content-addressed by the package digest and the file name
 * its entry locates). Entries never change: a second put of the same key keeps the first.
 */
export class PackageMetadataStore {
  constructor(readonly db: Kysely<Database>) {}

  /** The SQLite file entries can be read from by another thread (`readEntryColumn`); null on PostgreSQL. */
  file(): string | null {
    return sqliteFileOf(this.db);
  }

  async put(entries: readonly PackageMetadataRecord[], now: number): Promise<void> {
    for (let i = 0; i < entries.length; i += 50) {
      await this.db
        .insertInto('package_metadata')
        .values(
          entries.slice(i, i + 50).map((e) => ({
            sha256: e.sha256,
            file: e.file,
            primary_xml: e.xml.primary,
            primary_gz: e.gz.primary,
            filelists_xml: e.xml.filelists,
            filelists_gz: e.gz.filelists,
            other_xml: e.xml.other,
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
