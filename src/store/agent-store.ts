import type { Kysely, Selectable } from 'kysely';
import { LenixError } from '../core/errors.js';
import type { AgentRole } from '../scheduler/task-state.js';
import type { AgentRecord } from './records.js';
import type { Database } from './schema.js';
import { json, toAgent } from './rows.js';
import { readById } from './statements.js';

/** Registered agents (build nodes, signers, testers): one record per name and role, kept across restarts. */
export class AgentStore {
  /** Read on every lease. */
  private readonly byId: (id: number) => Promise<Selectable<Database['agents']> | undefined>;

  constructor(readonly db: Kysely<Database>) {
    this.byId = readById(db, (id) => db.selectFrom('agents').selectAll().where('id', '=', id));
  }

  /** Register or re-register (same name and role): an agent keeps its id across restarts. */
  async register(
    a: {
      name: string;
      role: AgentRole;
      arches: readonly string[];
      capabilities: Record<string, unknown>;
      tokenId: number;
    },
    now: number,
  ): Promise<AgentRecord> {
    return this.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('agents')
        .selectAll()
        .where('name', '=', a.name)
        .where('role', '=', a.role)
        .executeTakeFirst();
      if (existing) {
        if (existing.token_id !== a.tokenId) {
          throw new LenixError('FORBIDDEN', `agent ${a.name} is registered with another token`);
        }
        const row = await trx
          .updateTable('agents')
          .set({ arches: json(a.arches), capabilities: json(a.capabilities), last_seen_at: now })
          .where('id', '=', existing.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return toAgent(row);
      }
      const row = await trx
        .insertInto('agents')
        .values({
          name: a.name,
          role: a.role,
          arches: json(a.arches),
          capabilities: json(a.capabilities),
          token_id: a.tokenId,
          registered_at: now,
          last_seen_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toAgent(row);
    });
  }

  async get(id: number): Promise<AgentRecord | null> {
    const row = await this.byId(id);
    return row ? toAgent(row) : null;
  }

  async list(): Promise<AgentRecord[]> {
    const rows = await this.db.selectFrom('agents').selectAll().orderBy('id').execute();
    return rows.map(toAgent);
  }

  async touch(id: number, now: number): Promise<void> {
    await this.db.updateTable('agents').set({ last_seen_at: now }).where('id', '=', id).execute();
  }
}
