import type SQLite from 'better-sqlite3';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

export interface WalCheckpointer {
  /** WAL frames copied into the database file so far. */
  readonly checkpointed: () => number;
  stop(): Promise<void>;
}

/**
 * Move SQLite's WAL checkpoints off the event loop. By default the connection that commits the 1000th page
 * copies the WAL into the database and fsyncs both, inside that commit: a lease or heartbeat that happens to
 * be that commit waits for the disk (about a fifth of the scheduler's time, docs/benchmarks.md). Here the
 * serving connection never checkpoints; a worker thread with its own connection does, a few times a second.
 * If the worker fails, the serving connection checkpoints for itself again, as before.
 */
export function startWalCheckpointer(
  handle: SQLite.Database,
  opts: { file: string; intervalMs?: number; synchronous: 'NORMAL' | 'FULL' },
): WalCheckpointer {
  let checkpointed = 0;
  let stopped = false;
  const worker = new Worker(new URL('./wal-checkpoint-worker.js', import.meta.url), {
    workerData: { file: opts.file, intervalMs: opts.intervalMs ?? 200, synchronous: opts.synchronous },
  });
  worker.unref();
  worker.on('message', (m: { checkpointed: number }) => {
    checkpointed += m.checkpointed;
  });
  const fallBack = () => {
    if (!stopped && handle.open) handle.pragma('wal_autocheckpoint = 1000');
  };
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  handle.pragma('wal_autocheckpoint = 0');
  return {
    checkpointed: () => checkpointed,
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = once(worker, 'exit');
      worker.ref(); // keep the process alive until the worker has closed its connection
      worker.postMessage('stop');
      await exited;
      if (handle.open) handle.pragma('wal_autocheckpoint = 1000');
    },
  };
}
