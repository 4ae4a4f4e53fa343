import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './cli.js';
import { INITDB_ARGS, postgresBinDir } from './postgres.js';

const run = promisify(execFile);

/**
 * A PostgreSQL primary with a streaming replica, both from Debian's binaries on loopback
 * (../shared/research/feasibility.md §2b): base backup with a replication slot, synchronous replication (a
 * commit is acknowledged only once the replica has it, so a promote loses nothing acknowledged), and a
 * promote that stops the primary hard first, as a failover after the primary's machine died.
 */
export interface PostgresPair {
  readonly primaryPort: number;
  readonly replicaPort: number;
  /** A database URL on the given port. */
  url(port: number, db?: string): string;
  /** Kill the primary (immediate stop) and promote the replica; resolves once it accepts writes. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPostgresPair(db: string): Promise<PostgresPair> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (run scripts/bootstrap.sh)');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-pgpair-'));
  const asRoot = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: '/' }) : run(cmd, args);
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  await chmod(dir, 0o700);
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const primary = path.join(dir, 'primary');
  const replica = path.join(dir, 'replica');
  const url = (port: number, name = db) => `postgres://lenix@127.0.0.1:${port}/${name}`;
  const ctl = (data: string, ...args: string[]) =>
    as(path.join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', '-l', `${data}.log`, ...args]);
  const options = (port: number) =>
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on`;
  await as(path.join(bin, 'initdb'), ['-D', primary, ...INITDB_ARGS]);
  // pg_hba: replication connections from loopback (initdb's trust covers local and host for normal ones).
  const hba = `host replication lenix 127.0.0.1/32 trust\n`;
  if (asRoot) await as('sh', ['-c', `printf '%s' '${hba}' >> ${primary}/pg_hba.conf`]);
  else await appendFile(path.join(primary, 'pg_hba.conf'), hba);
  await ctl(primary, '-o', options(primaryPort), 'start');
  const admin = new pg.Client({ connectionString: url(primaryPort, 'postgres') });
  await admin.connect();
  await admin.query(`create database "${db}"`);
  await admin.query(`select pg_create_physical_replication_slot('replica1')`);
  await admin.end();
  await as(path.join(bin, 'pg_basebackup'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'lenix',
    '-D',
    replica,
    '-R',
    '-X',
    'stream',
    '-S',
    'replica1',
    // An immediate checkpoint: the default spread one makes the backup wait ~90 s on an idle primary.
    '-c',
    'fast',
  ]);
  await ctl(replica, '-o', `${options(replicaPort)} -c cluster_name=replica1`, 'start');
  // Synchronous: acknowledged commits are on the replica too.
  const sync = new pg.Client({ connectionString: url(primaryPort, 'postgres') });
  await sync.connect();
  await sync.query(`alter system set synchronous_standby_names = '*'`);
  await sync.query('select pg_reload_conf()');
  for (;;) {
    const r = await sync.query(`select sync_state from pg_stat_replication`);
    if (r.rows.some((x: { sync_state: string }) => x.sync_state === 'sync')) break;
    await new Promise((res) => setTimeout(res, 100)); // polling replication state (no event for it)
  }
  await sync.end();
  await writeFile(path.join(dir, 'ports'), `${primaryPort} ${replicaPort}\n`);
  return {
    primaryPort,
    replicaPort,
    url,
    async failover() {
      await ctl(primary, '-m', 'immediate', 'stop');
      await ctl(replica, 'promote');
      const c = new pg.Client({ connectionString: url(replicaPort, 'postgres') });
      await c.connect();
      try {
        for (;;) {
          const r = await c.query('select pg_is_in_recovery() as r');
          if (r.rows[0].r === false) return;
          await new Promise((res) => setTimeout(res, 100));
        }
      } finally {
        await c.end();
      }
    },
    async stop() {
      for (const d of [replica, primary]) await ctl(d, '-m', 'immediate', 'stop').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
