/**
 * Scheduler under load (issue 2): 10,000 queued tasks, 100 simulated agents leasing, heartbeating and
 * completing over HTTP on loopback, against a real `lenix server` process, on SQLite and on PostgreSQL.
 * Reports lease latency p50/p99 and completed tasks per second. Not a test: it never fails on timing.
 *
 * Agents complete as real agents do (kit/run-agent.ts): each completion asks for the agent's next task, so a
 * cycle is two requests after the first lease; each database also runs once with the lease as a request of its
 * own (three requests a cycle). PostgreSQL then runs with two servers on the same database, the agents split
 * between them. The paced run leases on its own schedule, so its cycles are three requests.
 *
 * Each server first runs `--warmup` cycles (default 2,000, untimed, three requests each) on tasks of their own,
 * then the measured ones: a server runs for days, and on the 2-core VM the first ~2,000 cycles of a new process
 * cost about twice what later ones do (its JIT and its first touches of memory). One SQLite row is measured
 * cold, from the server's start, as the figures before 2026-12-02 were.
 *
 *   npm run build && node dist/bench/scheduler.js [--tasks 10000] [--agents 100] [--warmup 2000] [--only sqlite|postgres]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hashToken, newToken } from '../src/server/auth.js';
import { openDatabase, type DatabaseConfig } from '../src/store/dialect.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { Store } from '../src/store/store.js';
import { freePort } from '../test/support/cli.js';
import { ApiClient } from '../src/client/http.js';
import { startPostgres } from '../test/support/postgres.js';
import { liveChildrenCpu, processCpu } from './support/measure.js';

const BIN = fileURLToPath(new URL('../../bin/lenix.js', import.meta.url));
const FLOOR = fileURLToPath(new URL('./queue-floor-server.js', import.meta.url));

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '10000' },
    agents: { type: 'string', default: '100' },
    sources: { type: 'string', default: '20' },
    only: { type: 'string' },
    paced: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '2000' },
  },
});
const TASKS = Number(args.tasks);
const AGENTS = Number(args.agents);
const SOURCES = Number(args.sources);
const PACED = Number(args.paced);
const WARMUP = Number(args.warmup);

interface Result {
  dialect: string;
  tasks: number;
  agents: number;
  /** Cycles run before the measured ones (0: measured from the server's start). */
  warmup: number;
  seedSeconds: number;
  seconds: number;
  perSecond: number;
  lease: Stats;
  heartbeat: Stats;
  complete: Stats;
  emptyLeases: number;
  /** CPU time per cycle (user + system), the servers' and this load generator's, while the agents ran. */
  serverCpuMs: number;
  clientCpuMs: number;
  /** PostgreSQL's CPU time per cycle (the postmaster and its backends), 0 on SQLite (in the server's process). */
  databaseCpuMs: number;
}
interface Stats {
  p50: number;
  p99: number;
  max: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return { p50: q(0.5), p99: q(0.99), max: s[s.length - 1] ?? 0 };
}

async function seed(cfg: DatabaseConfig, tasks: number): Promise<{ tokens: string[]; seconds: number }> {
  const t0 = performance.now();
  const { db, dialect } = openDatabase(cfg);
  await migrateToLatest(db, dialect);
  const store = new Store(db, dialect);
  const now = Date.now();
  const perSource = Math.ceil(tasks / SOURCES);
  let made = 0;
  for (let s = 0; s < SOURCES && made < tasks; s++) {
    const source = await store.sources.add(
      { name: `bench-${s}`, url: `/srv/bench-${s}`, branch: 'main', watch: false },
      now,
    );
    const commit = await store.sources.recordCommit(
      source.id,
      { sha: s.toString(16).padStart(40, '0'), tree: 'f'.repeat(40), committedAt: 1, subject: 'bench' },
      now,
    );
    for (let i = 0; i < perSource && made < tasks; i++, made++) {
      await store.builds.create(
        {
          sourceId: source.id,
          commitId: commit.id,
          ref: 'main',
          priority: 0,
          arches: ['x86_64'],
          specPath: 'b.spec',
          packageName: `bench-${s}`,
          packageEvr: '1-1',
          createdBy: 'bench',
          maxAttempts: 3,
        },
        now,
      );
    }
  }
  const tokens: string[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const token = newToken();
    await store.tokens.create(`agent-${i}`, hashToken(token), ['agent:build'], now);
    tokens.push(token);
  }
  await store.close();
  return { tokens, seconds: (performance.now() - t0) / 1000 };
}

/** Agents speak through the client real agents use (src/client/http.ts: node:http with keep-alive). */
interface LeaseAnswer {
  lease: { id: number; fencingToken: number };
}

/** Start a server process and wait until it listens. */
async function serve(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const server = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return server;
}

/**
 * 100 agents (one client each, as agents run) lease, heartbeat and complete until the queue is empty — or,
 * paced, start `pace.perSecond` cycles a second between them (each agent every AGENTS / perSecond seconds) for
 * `pace.cycles` cycles: lease latency under a given load rather than at saturation, where every request waits
 * behind the 99 others (Little's law: 100 agents at C cycles/s wait ~100 / 3C s a call).
 */
async function drive(
  bases: string | readonly string[],
  tokens: string[],
  label: string,
  servers: readonly ChildProcess[],
  o: { pace?: { perSecond: number; cycles: number }; separate?: boolean; warmup?: number; postmaster?: number } = {},
): Promise<Result> {
  const { pace } = o;
  const warmup = o.warmup ?? 0;
  // As agents run (kit/run-agent.ts), each completion asks for the agent's next task; paced cycles, and the
  // `separate` runs, lease on their own instead: three requests a cycle.
  const combined = !pace && !o.separate;
  const leases: number[] = [];
  const beats: number[] = [];
  const completes: number[] = [];
  let empty = 0;
  let done = 0;
  let started = 0;
  const serverCpu = () => servers.reduce((sum, p) => sum + processCpu(p.pid!).own * 1000, 0);
  const { postmaster } = o;
  const databaseCpu = () => {
    if (postmaster === undefined) return 0;
    const { own, children } = processCpu(postmaster);
    return (own + children + liveChildrenCpu(postmaster)) * 1000;
  };
  let cpu0 = { server: serverCpu(), client: process.cpuUsage(), database: databaseCpu() };
  let t0 = performance.now();
  // Warm-up: `warmup` cycles between the agents, three requests each, nothing recorded; the clock and the CPU
  // counts start when the last agent has finished its part.
  let warmStarted = 0;
  let waiting = tokens.length;
  let warmed = (): void => undefined;
  const allWarm = new Promise<void>((resolve) => {
    warmed = resolve;
  });
  const warm = async (api: ApiClient, agentId: number) => {
    while (warmStarted < warmup) {
      warmStarted++;
      const got = await api.json<LeaseAnswer | null>('POST', '/api/v1/agent/lease', { agentId, waitMs: 0 });
      if (!got) throw new Error(`${label}: the queue ran dry during the warm-up`);
      const { id, fencingToken } = got.lease;
      await api.json('POST', `/api/v1/agent/leases/${id}/heartbeat`, { fencingToken });
      await api.json('POST', `/api/v1/agent/leases/${id}/complete`, {
        fencingToken,
        outcome: { kind: 'failure', code: 'BUILD_FAILED', reason: 'benchmark' },
      });
    }
    if (--waiting === 0) {
      [t0, cpu0] = [performance.now(), { server: serverCpu(), client: process.cpuUsage(), database: databaseCpu() }];
      warmed();
    }
    await allWarm;
  };
  await Promise.all(
    tokens.map(async (token, i) => {
      const all = typeof bases === 'string' ? [bases] : bases;
      const api = new ApiClient(all[i % all.length]!, token); // agent i talks to server i mod N
      const reg = await api.json<{ agentId: number }>('POST', '/api/v1/agent/register', {
        name: `agent-${i}`,
        role: 'build',
        arches: ['x86_64', 'noarch', 'src'],
      });
      if (warmup > 0) await warm(api, reg.agentId);
      const every = pace ? (tokens.length / pace.perSecond) * 1000 : 0;
      let next = t0 + (every * i) / tokens.length;
      let brought: LeaseAnswer | null | undefined;
      for (;;) {
        if (pace) {
          if (started >= pace.cycles) return;
          started++;
          // Pacing the load generator, not waiting for the server: the next cycle starts on its schedule.
          const wait = next - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          next += every;
        }
        let t = performance.now();
        let got = brought;
        if (got === undefined) {
          got = await api.json<LeaseAnswer | null>('POST', '/api/v1/agent/lease', { agentId: reg.agentId, waitMs: 0 });
          leases.push(performance.now() - t);
        }
        if (got === null) {
          empty++;
          return;
        }
        const { id, fencingToken } = got.lease;
        t = performance.now();
        await api.json('POST', `/api/v1/agent/leases/${id}/heartbeat`, { fencingToken });
        beats.push(performance.now() - t);
        t = performance.now();
        // A deterministic failure ends the task without artifacts: the full completion path minus fan-out.
        const ended = await api.json<{ next?: LeaseAnswer | null }>('POST', `/api/v1/agent/leases/${id}/complete`, {
          fencingToken,
          outcome: { kind: 'failure', code: 'BUILD_FAILED', reason: 'benchmark' },
          ...(combined ? { next: { agentId: reg.agentId } } : {}),
        });
        completes.push(performance.now() - t);
        // A completion that brought a task counts as that task's lease too (its latency, both steps).
        brought = combined ? ended.next : undefined;
        if (brought) leases.push(performance.now() - t);
        done++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const serverCpuMs = serverCpu() - cpu0.server;
  const databaseCpuMs = databaseCpu() - cpu0.database;
  const client = process.cpuUsage(cpu0.client);
  const expected = pace?.cycles ?? TASKS;
  if (done !== expected) throw new Error(`${label}: completed ${done} of ${expected} tasks`);
  return {
    dialect: pace ? `${label}, paced at ${pace.perSecond}/s` : label,
    tasks: TASKS,
    agents: tokens.length,
    warmup,
    seedSeconds: 0,
    seconds,
    perSecond: done / seconds,
    lease: stats(leases),
    heartbeat: stats(beats),
    complete: stats(completes),
    emptyLeases: empty,
    serverCpuMs: serverCpuMs / done,
    clientCpuMs: (client.user + client.system) / 1000 / done,
    databaseCpuMs: databaseCpuMs / done,
  };
}

async function runOne(
  dialect: 'sqlite' | 'postgres',
  o: { pace?: { perSecond: number; cycles: number }; separate?: boolean; cold?: boolean } = {},
  servers = 1,
): Promise<Result> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-'));
  const pg = dialect === 'postgres' ? await startPostgres() : null;
  try {
    const dbUrl = pg ? await pg.newDatabase('bench') : path.join(dir, 'lenix.db');
    const cfg: DatabaseConfig = pg ? { dialect: 'postgres', url: dbUrl } : { dialect: 'sqlite', file: dbUrl };
    const warmup = o.cold ? 0 : WARMUP;
    const { tokens, seconds: seedSeconds } = await seed(cfg, TASKS + warmup);
    const prof = process.env['LENIX_BENCH_PROFILE']
      ? ['--cpu-prof', '--cpu-prof-dir', process.env['LENIX_BENCH_PROFILE']]
      : [];
    const procs: ChildProcess[] = [];
    const urls: string[] = [];
    try {
      for (let i = 0; i < servers; i++) {
        const port = await freePort();
        const data = path.join(dir, `server-${i}`);
        procs.push(
          await serve([...prof, BIN, 'server', '--data', data, '--port', String(port), '--database', dbUrl], {
            ...process.env,
            LENIX_LOG_LEVEL: 'warn',
          }),
        );
        urls.push(`http://127.0.0.1:${port}`);
      }
      const label = `${dialect}${servers > 1 ? `, ${servers} servers` : ''}${o.separate ? ', three requests a cycle' : ''}${o.cold ? ', cold (from the start)' : ''}`;
      const postmaster = pg?.pid;
      return {
        ...(await drive(urls, tokens, label, procs, { ...o, warmup, ...(postmaster ? { postmaster } : {}) })),
        seedSeconds,
      };
    } finally {
      for (const p of procs) {
        p.kill('SIGTERM');
        await once(p, 'exit');
      }
    }
  } finally {
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The same agents against bench/queue-floor-server.ts: what HTTP + SQLite cost on this machine. */
async function runFloor(): Promise<Result> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-floor-'));
  try {
    const port = await freePort();
    const server = await serve([FLOOR, path.join(dir, 'floor.db'), String(port), String(TASKS + WARMUP)]);
    try {
      return await drive(
        `http://127.0.0.1:${port}`,
        Array.from({ length: AGENTS }, () => 'x'),
        'floor (HTTP + SQLite only)',
        [server],
        { warmup: WARMUP },
      );
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => n.toFixed(2);
const results: Result[] = [];
for (const d of ['sqlite', 'postgres'] as const) {
  if (args.only && args.only !== d) continue;
  process.stderr.write(`running ${d}: ${TASKS} tasks, ${AGENTS} agents…\n`);
  results.push(await runOne(d));
  if (d === 'sqlite') results.push(await runOne(d, { cold: true })); // as measured before 2026-12-02
  // The same agents leasing with a request of its own each cycle, as before completions brought the next task.
  results.push(await runOne(d, { separate: true }));
  if (d === 'postgres') results.push(await runOne(d, {}, 2)); // the same agents over two servers
}
if (!args.only || args.only === 'sqlite') {
  process.stderr.write(`running the floor server, then sqlite paced at ${PACED}/s…\n`);
  results.push(await runFloor());
  results.push(await runOne('sqlite', { pace: { perSecond: PACED, cycles: Math.min(TASKS, PACED * 15) } }));
}
console.log(
  `\nScheduler under load: ${TASKS} queued tasks, ${AGENTS} agents over HTTP on loopback (${os.cpus().length} cores, Node ${process.version})\n`,
);
console.log(
  '| database | lease p50 ms | lease p99 ms | heartbeat p99 ms | complete p99 ms | lease+heartbeat+complete per s | server CPU ms a cycle | load generator CPU ms a cycle | PostgreSQL CPU ms a cycle | wall s |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  console.log(
    `| ${r.dialect} | ${fmt(r.lease.p50)} | ${fmt(r.lease.p99)} | ${fmt(r.heartbeat.p99)} | ${fmt(r.complete.p99)} | ${Math.round(r.perSecond)} | ${fmt(r.serverCpuMs)} | ${fmt(r.clientCpuMs)} | ${r.databaseCpuMs > 0 ? fmt(r.databaseCpuMs) : '–'} | ${fmt(r.seconds)} |`,
  );
}
const sqlite = results.find((r) => r.dialect === 'sqlite');
const floor = results.find((r) => r.dialect.startsWith('floor'));
const postgres = results.find((r) => r.dialect === 'postgres');
if (sqlite && postgres)
  console.log(`\nSQLite / PostgreSQL throughput ratio: ${(sqlite.perSecond / postgres.perSecond).toFixed(2)}`);
if (sqlite && floor)
  console.log(`Lenix on SQLite / floor server throughput ratio: ${(sqlite.perSecond / floor.perSecond).toFixed(2)}`);
console.log(
  "\nServer CPU counts the server processes only (SQLite runs inside them; PostgreSQL's postmaster and backends are counted on their own); a server with a core to itself would do at most 1000 / (server CPU ms a cycle) cycles a second.",
);
console.log(`\n${JSON.stringify(results)}`);
