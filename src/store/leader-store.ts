import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A single-writer role and who holds it. */
export interface Leadership {
  readonly role: string;
  readonly holder: string;
  /** Grows by one each time the role changes hands (a fencing number for what the holder writes). */
  readonly fencing: number;
  readonly expiresAt: number;
}

/** Proof of holding a role, checked in the statement it guards: a holder that lost the role writes nothing. */
export interface Fence {
  readonly role: string;
  readonly holder: string;
  readonly fencing: number;
}

/**
 * Single-writer roles among server processes sharing one database (the publisher, the lease reaper, the blob
 * collector): a row per role with its holder and an expiry. Claiming is one statement — an upsert that keeps
 * or takes the row only when it is the caller's or has expired — so two servers cannot both hold a role, on
 * SQLite or PostgreSQL. A holder renews well before the expiry; a dead one's role passes on when it expires.
 */
export class LeaderStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Hold `role` until now + ttlMs: the fencing number when held, null when another holder has it. */
  async claim(role: string, holder: string, now: number, ttlMs: number): Promise<number | null> {
    const r = await sql<{ fencing: number }>`
      insert into leaders (role, holder, fencing, expires_at) values (${role}, ${holder}, 1, ${now + ttlMs})
      on conflict (role) do update set
        holder = excluded.holder,
        expires_at = excluded.expires_at,
        fencing = case when leaders.holder = excluded.holder then leaders.fencing else leaders.fencing + 1 end
      where leaders.holder = excluded.holder or leaders.expires_at < ${now}
      returning fencing`.execute(this.db);
    const row = r.rows[0];
    return row ? Number(row.fencing) : null;
  }

  /** Give a role up at once (a clean shutdown), so the next claimant need not wait for it to expire. */
  async resign(role: string, holder: string): Promise<void> {
    await this.db
      .updateTable('leaders')
      .set({ expires_at: 0 })
      .where('role', '=', role)
      .where('holder', '=', holder)
      .execute();
  }

  async get(role: string): Promise<Leadership | null> {
    const r = await this.db.selectFrom('leaders').selectAll().where('role', '=', role).executeTakeFirst();
    return r ? { role: r.role, holder: r.holder, fencing: Number(r.fencing), expiresAt: Number(r.expires_at) } : null;
  }
}
