import SQLite from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The worker half of wal-checkpointer.ts: its own connection to the database file, copying committed WAL
 * frames into the database (PASSIVE: never waits for, nor blocks, the writer) every `intervalMs`.
 */
const { file, intervalMs, synchronous } = workerData as { file: string; intervalMs: number; synchronous: string };
const db = new SQLite(file);
db.pragma(`synchronous = ${synchronous}`);
const port = parentPort!;

const timer = setInterval(() => {
  const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
  if (r && r.checkpointed > 0) port.postMessage({ checkpointed: r.checkpointed, log: r.log });
}, intervalMs);

port.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
