import type { Kysely } from 'kysely';
import type { TokenRecord } from './records.js';
import type { Database } from './schema.js';
import { json, toToken } from './rows.js';

/** API tokens: only their hashes are stored; revoked and expired tokens are kept for the record. */
export class TokenStore {
  constructor(readonly db: Kysely<Database>) {}

  async create(
    name: string,
    tokenHash: string,
    scopes: readonly string[],
    now: number,
    expiresAt: number | null = null,
  ): Promise<number> {
    const row = await this.db
      .insertInto('tokens')
      .values({
        name,
        token_hash: tokenHash,
        scopes: json(scopes),
        created_at: now,
        revoked_at: null,
        expires_at: expiresAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async findByHash(tokenHash: string): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return row ? toToken(row) : null;
  }

  async list(): Promise<TokenRecord[]> {
    return (await this.db.selectFrom('tokens').selectAll().orderBy('id').execute()).map(toToken);
  }

  async get(id: number): Promise<TokenRecord | null> {
    const row = await this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toToken(row) : null;
  }

  /** The open leases of agents registered with this token end now: the reaper gives their tasks back to the queue. */
  async expireLeasesOf(tokenId: number, now: number): Promise<number> {
    const leases = this.db
      .selectFrom('leases')
      .innerJoin('agents', 'agents.id', 'leases.agent_id')
      .select('leases.id')
      .where('agents.token_id', '=', tokenId)
      .where('leases.ended_at', 'is', null);
    const r = await this.db
      .updateTable('leases')
      .set({ expires_at: now - 1 })
      .where('id', 'in', leases)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async revoke(id: number, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('tokens')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
}
