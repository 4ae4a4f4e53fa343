import { createHash } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { MemoryHashes, rootHash } from '../../src/ledger/merkle.js';
import { parseNote } from '../../src/ledger/note.js';
import { gitRepo, lenix, specWith } from './cli.js';
import type { Cluster, Member } from './cluster.js';

export { seeded } from './random.js';

type Task = { kind: string; state: string; artifacts: { sha256: string; kind: string; name: string }[] };
export type ChaosBuild = { id: number; state: string; reason: string | null; source: string; tasks: Task[] };

export interface ChaosReport {
  readonly seconds: number;
  readonly faults: readonly string[];
  readonly builds: readonly ChaosBuild[];
  /** Builds whose end was recorded other than exactly once (events `build.succeeded|failed|cancelled`). */
  readonly endedNotOnce: readonly number[];
  /** Artifacts (succeeded builds' signed packages) the blob store no longer serves as recorded. */
  readonly lost: readonly string[];
  /** A build offering the same package name more than once for one kind. */
  readonly duplicated: readonly string[];
  /** Tasks still leased once everything is quiet (a lease held by an agent that died). */
  readonly leasedAfter: number;
  /** Ledger: indexes 0..n-1 without a gap; checkpoints whose root is not that of a prefix of the log. */
  readonly ledger: { readonly entries: number; readonly gapless: boolean; readonly badCheckpoints: readonly number[] };
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Issue 16's chaos run: `builds` builds are asked for, then while they run a controller kills (SIGKILL) one
 * member at random — a server, the build node, the signer or the tester — every `faultEveryMs`, and starts it
 * again a second later. When every build has ended and nothing is leased, the invariants are read from the
 * database, the blob store and the ledger. Reproducible: `random` is the only source of choices.
 */
export async function chaos(
  c: Cluster,
  o: { builds: number; sources: number; faultEveryMs: number; random: () => number; faults: boolean },
): Promise<ChaosReport> {
  const env = (i: number) => ({
    LENIX_CONFIG: path.join(c.dir, 'none.json'),
    LENIX_SERVER: c.servers[i % c.servers.length]!.url,
    LENIX_TOKEN: c.admin,
  });
  /** A CLI call against whichever server answers (one may be down). */
  const cli = async (...args: string[]) => {
    for (let attempt = 0; ; attempt++) {
      const r = await lenix(args, env(attempt));
      if (r.code === 0) return r.stdout;
      if (attempt > 20) throw new Error(`lenix ${args.join(' ')}: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  };
  const names = Array.from({ length: o.sources }, (_, i) => `chaos-${i}`);
  for (const n of names) {
    await gitRepo(path.join(c.dir, 'repos', n), { [`${n}.spec`]: specWith(n, 'echo build') });
    await cli('source', 'add', n, path.join(c.dir, 'repos', n));
  }
  const t0 = performance.now();
  const ids: number[] = [];
  for (let i = 0; i < o.builds; i++)
    ids.push((JSON.parse(await cli('build', names[i % names.length]!, '--json')) as { id: number }).id);

  const get = async (id: number): Promise<ChaosBuild | null> => {
    for (let i = 0; i < c.servers.length; i++) {
      const b = await c
        .api(i)
        .json<ChaosBuild>('GET', `/api/v1/builds/${id}`)
        .catch(() => null);
      if (b) return b;
    }
    return null;
  };
  const done = (b: ChaosBuild | null) =>
    b !== null &&
    TERMINAL.has(b.state) &&
    (b.state !== 'succeeded' || b.tasks.some((t) => t.kind === 'test' && TERMINAL.has(t.state)));

  const faults: string[] = [];
  const members: Member[] = [...c.servers, ...c.agents];
  let stop = false;
  const controller = (async () => {
    while (o.faults && !stop) {
      await new Promise((r) => setTimeout(r, o.faultEveryMs));
      if (stop) break;
      const m = members[Math.floor(o.random() * members.length)]!;
      faults.push(m.name);
      await m.kill();
      await new Promise((r) => setTimeout(r, 1000));
      await m.start();
    }
  })();
  controller.catch(() => undefined); // awaited below; a member that fails to restart fails the run there
  // A bound for a run that hangs, not a timing assertion: 20 minutes, or 20 s a build for long runs.
  const deadline = Date.now() + Math.max(20 * 60_000, o.builds * 20_000);
  let builds: ChaosBuild[] = [];
  try {
    for (;;) {
      builds = (await Promise.all(ids.map(get))).filter((b): b is ChaosBuild => b !== null);
      if (builds.length === ids.length && builds.every(done)) break;
      if (Date.now() > deadline)
        throw new Error(
          `chaos: builds not done: ${JSON.stringify(builds.filter((b) => !done(b)).map((b) => [b.id, b.state]))}`,
        );
      await new Promise((r) => setTimeout(r, 1000)); // polling the API for the builds' progress
    }
  } finally {
    // The controller is stopped and awaited whatever happened, so it never restarts a member while the
    // cluster is being torn down (its failure then would hide this one).
    stop = true;
    await controller.catch(() => undefined);
  }
  await controller;
  const seconds = (performance.now() - t0) / 1000;

  const db = new pg.Client({ connectionString: c.dbUrl });
  await db.connect();
  try {
    const ends = (
      await db.query(
        `select build_id, count(*) as n from events where kind in ('build.succeeded','build.failed','build.cancelled') group by build_id`,
      )
    ).rows as { build_id: number; n: string }[];
    const endedNotOnce = ids.filter((id) => Number(ends.find((e) => Number(e.build_id) === id)?.n ?? 0) !== 1);
    // What a build offers (its tasks' artifacts from the lease that completed each task; uploads of a lease
    // that was lost stay on record but are not the build's): one of each name and kind.
    const duplicated = builds.flatMap((b) => {
      const seen = b.tasks.flatMap((t) => t.artifacts).map((a) => `${b.id}:${a.kind}:${a.name}`);
      return seen.filter((k, i) => seen.indexOf(k) !== i);
    });
    const leasedAfter = Number((await db.query(`select count(*) as n from tasks where state = 'leased'`)).rows[0].n);
    const rows = (await db.query('select idx, leaf_hash from ledger_entries order by idx')).rows as {
      idx: string;
      leaf_hash: Buffer;
    }[];
    const tree = new MemoryHashes();
    for (const r of rows) tree.append(new Uint8Array(r.leaf_hash));
    const badCheckpoints: number[] = [];
    for (const n of (await db.query('select note from ledger_checkpoints order by size')).rows as { note: string }[]) {
      const cp = parseCheckpoint(parseNote(n.note).text);
      if (cp.size > tree.size || Buffer.compare(Buffer.from(cp.root), Buffer.from(rootHash(tree, cp.size))) !== 0)
        badCheckpoints.push(cp.size);
    }
    const lost: string[] = [];
    for (const b of builds.filter((x) => x.state === 'succeeded'))
      for (const a of b.tasks.flatMap((t) => t.artifacts).filter((x) => x.kind === 'signed-rpm')) {
        const res = await fetch(`${c.servers[0]!.url}/api/v1/artifacts/${a.sha256}`).catch(() => null);
        const bytes = res?.ok ? Buffer.from(await res.arrayBuffer()) : Buffer.alloc(0);
        if (createHash('sha256').update(bytes).digest('hex') !== a.sha256) lost.push(`${b.id}:${a.name}`);
      }
    return {
      seconds,
      faults,
      builds,
      endedNotOnce,
      lost,
      duplicated,
      leasedAfter,
      ledger: {
        entries: rows.length,
        gapless: rows.every((r, i) => Number(r.idx) === i),
        badCheckpoints,
      },
    };
  } finally {
    await db.end();
  }
}
