import type { Kysely, Selectable } from 'kysely';
import type { ImportRecord } from './records.js';
import type { Database } from './schema.js';

function toImport(r: Selectable<Database['imports']>): ImportRecord {
  return {
    id: r.id,
    sha256: r.sha256,
    name: r.name,
    nevra: r.nevra,
    arch: r.arch,
    kind: r.kind === 'srpm' ? 'srpm' : 'rpm',
    size: Number(r.size),
    keyFingerprint: r.key_fingerprint,
    repo: r.repo,
    importedBy: r.imported_by,
    createdAt: Number(r.created_at),
  };
}

/** Imported packages: recorded only after their bytes are stored and their signature checked. */
export class ImportStore {
  constructor(readonly db: Kysely<Database>) {}

  async add(i: Omit<ImportRecord, 'id' | 'createdAt'>, now: number): Promise<ImportRecord> {
    const row = await this.db
      .insertInto('imports')
      .values({
        sha256: i.sha256,
        name: i.name,
        nevra: i.nevra,
        arch: i.arch,
        kind: i.kind,
        size: i.size,
        key_fingerprint: i.keyFingerprint,
        repo: i.repo,
        imported_by: i.importedBy,
        created_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toImport(row);
  }

  async get(id: number): Promise<ImportRecord | null> {
    const row = await this.db.selectFrom('imports').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toImport(row) : null;
  }

  /** Several imports by id (those that exist), in chunks well under the bound-parameter limits. */
  async getMany(ids: readonly number[]): Promise<ImportRecord[]> {
    const out: ImportRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db
        .selectFrom('imports')
        .selectAll()
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
      out.push(...rows.map(toImport));
    }
    return out;
  }

  async findBySha(sha256: string): Promise<ImportRecord | null> {
    const row = await this.db
      .selectFrom('imports')
      .selectAll()
      .where('sha256', '=', sha256)
      .orderBy('id')
      .executeTakeFirst();
    return row ? toImport(row) : null;
  }

  async list(limit: number): Promise<ImportRecord[]> {
    return (await this.db.selectFrom('imports').selectAll().orderBy('id', 'desc').limit(limit).execute()).map(toImport);
  }
}
