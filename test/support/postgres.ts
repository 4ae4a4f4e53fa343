import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './cli.js';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL for tests, from Debian's own binaries: initdb and pg_ctl on a temp folder, listening
 * on a free loopback port, removed after. initdb refuses to run as root, so as root it runs as `postgres`.
 */
export interface TestPostgres {
  readonly url: string;
  /** The postmaster's process id (its backends are its children). */
  readonly pid: number;
  newDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** initdb's arguments after `-D DIR`: trust on loopback, user lenix, no fsync, UTF-8 and the C locale. */
export const INITDB_ARGS = ['-A', 'trust', '-U', 'lenix', '--no-sync', '-E', 'UTF8', '--locale=C'];

export function postgresBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(base, versions[0], 'bin') : null;
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (run scripts/bootstrap.sh)');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-pg-'));
  const asRoot = process.getuid?.() === 0;
  const as = async (cmd: string, args: string[]) => {
    if (asRoot) return run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: '/' });
    return run(cmd, args);
  };
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  await chmod(dir, 0o700);
  const data = path.join(dir, 'data');
  await as(path.join(bin, 'initdb'), ['-D', data, ...INITDB_ARGS]);
  const port = await freePort();
  await as(path.join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-w',
    '-t',
    '60',
    '-l',
    path.join(dir, 'log'),
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
    'start',
  ]);
  const url = `postgres://lenix@127.0.0.1:${port}/postgres`;
  // postmaster.pid's first line is the postmaster's process id.
  const pid = Number((await readFile(path.join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  return {
    url,
    pid,
    async newDatabase(name: string) {
      const pg = (await import('pg')).default;
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`create database "${name.replace(/[^a-z0-9_]/g, '_')}"`);
      await c.end();
      return `postgres://lenix@127.0.0.1:${port}/${name.replace(/[^a-z0-9_]/g, '_')}`;
    },
    async stop() {
      await as(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
