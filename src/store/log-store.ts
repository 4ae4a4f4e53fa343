import type { Kysely } from 'kysely';
import { LenixError } from '../core/errors.js';
import type { Database } from './schema.js';

/** Task logs: append-only chunks per task, read back from any offset (live followers, downloads). */
export class LogStore {
  constructor(readonly db: Kysely<Database>) {}

  /**
   * Append to a task's log at `offset`. Idempotent: bytes the server already has are skipped, so an agent
   * may resend after a lost response. A gap (offset past the end) is refused so the log stays contiguous.
   */
  async append(taskId: number, offset: number, data: Uint8Array): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const task = await trx
        .selectFrom('tasks')
        .select(['log_size'])
        .where('id', '=', taskId)
        .executeTakeFirstOrThrow();
      const size = Number(task.log_size);
      if (offset > size) throw new LenixError('LOG_OFFSET_GAP', `log offset ${offset} is past the stored size ${size}`);
      const skip = size - offset;
      if (skip >= data.length) return size;
      const fresh = data.subarray(skip);
      await trx
        .insertInto('log_chunks')
        .values({ task_id: taskId, start_offset: size, end_offset: size + fresh.length, data: Buffer.from(fresh) })
        .execute();
      await trx
        .updateTable('tasks')
        .set({ log_size: size + fresh.length })
        .where('id', '=', taskId)
        .execute();
      return size + fresh.length;
    });
  }

  /** Bytes of a task's log from `from` (at most `max`). */
  async read(taskId: number, from: number, max = 64 * 1024 * 1024): Promise<Buffer> {
    const rows = await this.db
      .selectFrom('log_chunks')
      .select(['start_offset', 'end_offset', 'data'])
      .where('task_id', '=', taskId)
      .where('end_offset', '>', from)
      .orderBy('start_offset')
      .execute();
    const parts: Buffer[] = [];
    let total = 0;
    for (const r of rows) {
      const start = Math.max(0, from - Number(r.start_offset));
      const chunk = Buffer.from(r.data).subarray(start);
      parts.push(chunk);
      total += chunk.length;
      if (total >= max) break;
    }
    return Buffer.concat(parts).subarray(0, max);
  }
}
