import { sql, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Database } from './schema.js';

export interface NewLedgerEntry {
  readonly data: Uint8Array;
  readonly leafHash: Uint8Array;
  readonly kind: string;
  readonly subjectKeys: readonly string[];
}

export interface LedgerEntry {
  readonly index: number;
  readonly data: Uint8Array;
  readonly kind: string;
  readonly createdAt: number;
}

/** The ledger's rows: entries in index order (never updated or deleted), subject look-ups, checkpoints. */
export class LedgerStore {
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {}

  /**
   * Append entries at the end of the log in one transaction and return the first index. On SQLite this
   * transaction is committed with synchronous=FULL, so a returned index survives even a power loss.
   */
  async append(entries: readonly NewLedgerEntry[], now: number): Promise<number> {
    if (this.dialect === 'sqlite') await sql`pragma synchronous = FULL`.execute(this.db);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.db.transaction().execute(async (trx) => {
            const row = await trx
              .selectFrom('ledger_entries')
              .select((eb) => eb.fn.max<number>('idx').as('m'))
              .executeTakeFirst();
            const first = row?.m === null || row?.m === undefined ? 0 : Number(row.m) + 1;
            // One multi-row INSERT per table (in chunks, below every dialect's parameter limit).
            const rows = entries.map((e, i) => ({
              idx: first + i,
              data: Buffer.from(e.data),
              leaf_hash: Buffer.from(e.leafHash),
              kind: e.kind,
              subject: JSON.stringify(e.subjectKeys),
              created_at: now,
            }));
            for (let i = 0; i < rows.length; i += 100)
              await trx
                .insertInto('ledger_entries')
                .values(rows.slice(i, i + 100))
                .execute();
            const keys = entries.flatMap((e, i) => [...new Set(e.subjectKeys)].map((key) => ({ key, idx: first + i })));
            for (let i = 0; i < keys.length; i += 200)
              await trx
                .insertInto('ledger_subjects')
                .values(keys.slice(i, i + 200))
                .execute();
            return first;
          });
        } catch (err) {
          // Another server replica appended at the same index first: take the next ones.
          if (attempt < 5 && (err as { code?: string }).code === '23505') continue;
          throw err;
        }
      }
    } finally {
      if (this.dialect === 'sqlite') await sql`pragma synchronous = NORMAL`.execute(this.db);
    }
  }

  async size(): Promise<number> {
    const row = await this.db
      .selectFrom('ledger_entries')
      .select((eb) => eb.fn.max<number>('idx').as('m'))
      .executeTakeFirst();
    return row?.m === null || row?.m === undefined ? 0 : Number(row.m) + 1;
  }

  async leafHashes(from: number, count?: number): Promise<Uint8Array[]> {
    let q = this.db.selectFrom('ledger_entries').select(['idx', 'leaf_hash']).where('idx', '>=', from);
    if (count !== undefined) q = q.where('idx', '<', from + count);
    const rows = await q.orderBy('idx').execute();
    return rows.map((r) => new Uint8Array(r.leaf_hash));
  }

  async entries(from: number, count: number): Promise<LedgerEntry[]> {
    const rows = await this.db
      .selectFrom('ledger_entries')
      .select(['idx', 'data', 'kind', 'created_at'])
      .where('idx', '>=', from)
      .where('idx', '<', from + count)
      .orderBy('idx')
      .execute();
    return rows.map((r) => ({
      index: Number(r.idx),
      data: new Uint8Array(r.data),
      kind: r.kind,
      createdAt: Number(r.created_at),
    }));
  }

  async lookup(key: string): Promise<number[]> {
    const rows = await this.db
      .selectFrom('ledger_subjects')
      .select('idx')
      .where('key', '=', key)
      .orderBy('idx')
      .execute();
    return rows.map((r) => Number(r.idx));
  }

  /** Which of these subject keys name at least one entry (asked 500 at a time). */
  async known(keys: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    const all = [...new Set(keys)];
    for (let i = 0; i < all.length; i += 500) {
      const rows = await this.db
        .selectFrom('ledger_subjects')
        .select('key')
        .distinct()
        .where('key', 'in', all.slice(i, i + 500))
        .execute();
      for (const r of rows) out.add(r.key);
    }
    return out;
  }

  /** Entry indexes and stages for a subject key, in log order. */
  async lookupStages(key: string): Promise<{ index: number; kind: string }[]> {
    const rows = await this.db
      .selectFrom('ledger_subjects')
      .innerJoin('ledger_entries', 'ledger_entries.idx', 'ledger_subjects.idx')
      .select(['ledger_entries.idx', 'ledger_entries.kind'])
      .where('ledger_subjects.key', '=', key)
      .orderBy('ledger_entries.idx')
      .execute();
    return rows.map((r) => ({ index: Number(r.idx), kind: r.kind }));
  }

  /** The stages recorded for a subject key (e.g. build:12 → source, build, sign). */
  async stagesFor(key: string): Promise<Set<string>> {
    const rows = await this.db
      .selectFrom('ledger_subjects')
      .innerJoin('ledger_entries', 'ledger_entries.idx', 'ledger_subjects.idx')
      .select('ledger_entries.kind')
      .where('ledger_subjects.key', '=', key)
      .execute();
    return new Set(rows.map((r) => r.kind));
  }

  /**
   * Store a signed checkpoint; the first note stored for a size stays (servers sharing the log may both sign
   * one). Returns the note that is stored.
   */
  async saveCheckpoint(size: number, note: string, now: number): Promise<string> {
    await this.db
      .insertInto('ledger_checkpoints')
      .values({ size, note, created_at: now })
      .onConflict((oc) => oc.column('size').doNothing())
      .execute();
    return this.checkpointNote(size);
  }

  async checkpointNote(size: number): Promise<string> {
    const r = await this.db
      .selectFrom('ledger_checkpoints')
      .select('note')
      .where('size', '=', size)
      .executeTakeFirstOrThrow();
    return r.note;
  }

  /** Replace a checkpoint's note only if it is still `expected` (adding cosignatures); false if it changed. */
  async replaceCheckpointNote(size: number, expected: string, note: string): Promise<boolean> {
    const r = await this.db
      .updateTable('ledger_checkpoints')
      .set({ note })
      .where('size', '=', size)
      .where('note', '=', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async latestCheckpoint(): Promise<{ size: number; note: string } | null> {
    const r = await this.db
      .selectFrom('ledger_checkpoints')
      .select(['size', 'note'])
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? { size: Number(r.size), note: r.note } : null;
  }

  async addWitness(url: string, now: number): Promise<void> {
    const exists = await this.db.selectFrom('ledger_witnesses').select('url').where('url', '=', url).executeTakeFirst();
    if (!exists) await this.db.insertInto('ledger_witnesses').values({ url, created_at: now }).execute();
  }

  async removeWitness(url: string): Promise<boolean> {
    const r = await this.db.deleteFrom('ledger_witnesses').where('url', '=', url).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async witnesses(): Promise<string[]> {
    return (await this.db.selectFrom('ledger_witnesses').select('url').orderBy('url').execute()).map((r) => r.url);
  }
}
