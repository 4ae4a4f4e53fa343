/**
 * The floor for bench/scheduler.ts: the least a queue server over HTTP and SQLite can do per cycle on this
 * machine — Fastify, one table, a bearer header, the same three calls (lease in a transaction: pick the next
 * queued task and fence it; heartbeat and complete: one conditional update each) — with no authentication,
 * no leases table, no events, no build state, no ledger. A completion with `next` leases the next task too, as
 * Lenix's does. The scheduler benchmark runs its agents against this
 * and against `lenix server` in one run, so the ratio says how much of Lenix's time is its own.
 *
 *   node dist/bench/queue-floor-server.js DB_FILE PORT TASKS
 */
import SQLite from 'better-sqlite3';
import Fastify from 'fastify';

const [file, port, tasks] = process.argv.slice(2);
const db = new SQLite(file!);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`create table tasks (id integer primary key, state text not null, fencing integer not null,
  expires integer, priority integer not null default 0);
  create index tasks_queue on tasks (state, priority desc, id)`);
const add = db.prepare(`insert into tasks (state, fencing) values ('queued', 0)`);
db.transaction(() => {
  for (let i = 0; i < Number(tasks); i++) add.run();
})();
const pick = db.prepare(`select id, fencing from tasks where state = 'queued' order by priority desc, id limit 1`);
const take = db.prepare(
  `update tasks set state = 'leased', fencing = fencing + 1, expires = ? where id = ? and state = 'queued' returning id, fencing`,
);
const beat = db.prepare(`update tasks set expires = ? where id = ? and state = 'leased' and fencing = ?`);
const end = db.prepare(
  `update tasks set state = 'failed', expires = null where id = ? and state = 'leased' and fencing = ?`,
);
const lease = db.transaction(() => {
  const c = pick.get() as { id: number } | undefined;
  return c ? (take.get(Date.now() + 60_000, c.id) as { id: number; fencing: number }) : undefined;
});

const app = Fastify();
type Fenced = { Params: { id: string }; Body: { fencingToken: number; next?: { agentId: number } } };
app.post('/api/v1/agent/register', async () => ({ agentId: 1 }));
app.post('/api/v1/agent/lease', async (_req, reply) => {
  const t = lease();
  if (!t) return reply.status(204).send();
  return { lease: { id: t.id, fencingToken: t.fencing } };
});
app.post<Fenced>('/api/v1/agent/leases/:id/heartbeat', async (req) => {
  beat.run(Date.now() + 60_000, Number(req.params.id), req.body.fencingToken);
  return { expiresAt: 0, cancelled: false };
});
app.post<Fenced>('/api/v1/agent/leases/:id/complete', async (req) => {
  end.run(Number(req.params.id), req.body.fencingToken);
  if (!req.body.next) return { ok: true };
  const t = lease();
  return { ok: true, next: t ? { lease: { id: t.id, fencingToken: t.fencing } } : null };
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
console.log('listening');
