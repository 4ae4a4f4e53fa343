import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import type { Database } from './schema.js';
import { ReplicaReads, readRoutingDialect } from './read-routing.js';
import { startWalCheckpointer, type WalCheckpointer } from './wal-checkpointer.js';
import { registerSqlite } from './statements.js';
import { prepareMarkedStatements } from './pg-prepared.js';

export type Dialect = 'sqlite' | 'postgres';

/** Where the database lives: a SQLite file (the embedded default) or a PostgreSQL connection string. */
export type DatabaseConfig =
  | { readonly dialect: 'sqlite'; readonly file: string }
  | {
      readonly dialect: 'postgres';
      readonly url: string;
      readonly poolSize?: number;
      /** A streaming replica for scoped plain reads (read-routing.ts). */
      readonly readUrl?: string;
    };

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** SQLite opened with `checkpointInBackground`: stop it before closing the database. */
  readonly checkpointer?: WalCheckpointer;
  /** PostgreSQL with `readUrl`: runs the scopes whose plain reads may use the replica. */
  readonly replica?: ReplicaReads;
}

export interface OpenOptions {
  /** PostgreSQL dropped an idle pooled connection (logged by the server; the pool replaces it). */
  readonly onConnectionLost?: (err: Error) => void;
  /** A long-running server: SQLite's WAL checkpoints run in a worker thread (wal-checkpointer.ts). */
  readonly checkpointInBackground?: boolean;
}

/** `postgres://...` or `postgresql://...` is PostgreSQL; anything else is a SQLite file path. */
export function parseDatabaseUrl(value: string): DatabaseConfig {
  if (/^postgres(ql)?:\/\//.test(value)) return { dialect: 'postgres', url: value };
  return { dialect: 'sqlite', file: value.replace(/^sqlite:(\/\/)?/, '') };
}

/**
 * Kysely prepares every query anew; the scheduler runs the same few dozen statements thousands of times a
 * second, so keep prepared statements by SQL text (Kysely runs one statement at a time on this connection,
 * and statements.ts runs its own only while it holds that connection, so reusing a statement object is safe).
 */
function statementCache(handle: SQLite.Database, max = 512): (sqlText: string) => SQLite.Statement {
  const cache = new Map<string, SQLite.Statement>();
  return (sqlText) => {
    let st = cache.get(sqlText);
    if (!st) {
      st = handle.prepare(sqlText);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      cache.set(sqlText, st);
    }
    return st;
  };
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

export function openDatabase(config: DatabaseConfig, opts: OpenOptions = {}): OpenDatabase {
  if (config.dialect === 'sqlite') {
    const handle = new SQLite(config.file);
    // WAL lets readers run beside the writer. synchronous=NORMAL (SQLite's recommendation for WAL): a
    // committed transaction survives a process crash; after an OS crash or power loss the last few may be
    // lost, which the protocol tolerates (an unrecorded completion's lease expires and the task runs again;
    // blobs are fsynced before they are recorded). LENIX_SQLITE_SYNC=FULL fsyncs every commit (about half
    // the throughput; docs/benchmarks.md).
    handle.pragma('journal_mode = WAL');
    const synchronous = process.env['LENIX_SQLITE_SYNC'] === 'FULL' ? 'FULL' : 'NORMAL';
    handle.pragma(`synchronous = ${synchronous}`);
    handle.pragma('foreign_keys = ON');
    handle.pragma('busy_timeout = 5000');
    const prepare = statementCache(handle);
    const database: SqliteDatabase = {
      close: () => handle.close(),
      prepare: (sqlText) => prepare(sqlText) as unknown as ReturnType<SqliteDatabase['prepare']>,
    };
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    // The scheduler's hot path runs its statements on this connection directly (statements.ts).
    registerSqlite(db, { handle, prepare });
    if (!opts.checkpointInBackground || config.file === ':memory:') return { db, dialect: 'sqlite' };
    return { db, dialect: 'sqlite', checkpointer: startWalCheckpointer(handle, { file: config.file, synchronous }) };
  }
  const primary = postgresDialect(config.url, config.poolSize, opts);
  if (!config.readUrl) return { db: new Kysely<Database>({ dialect: primary }), dialect: 'postgres' };
  const replica = new ReplicaReads();
  const dialect = readRoutingDialect(primary, postgresDialect(config.readUrl, config.poolSize, opts), replica);
  return { db: new Kysely<Database>({ dialect }), dialect: 'postgres', replica };
}

function postgresDialect(url: string, poolSize: number | undefined, opts: OpenOptions): PostgresDialect {
  // Times and offsets are bigint columns; they stay far below 2^53, so parse them as numbers
  // (per pool, not by mutating pg's global type table).
  const types = {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
      return pg.types.getTypeParser(oid, format as 'text');
    },
  };
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize ?? 10,
    types: types as pg.CustomTypesConfig,
  });
  // An idle connection the database dropped (a restart, a failover) is an 'error' event on the pool: without
  // a listener it would end the process. The pool discards that client and opens a new one on next use.
  pool.on('error', (err) => opts.onConnectionLost?.(err));
  // The same for a connection dropped while checked out but between queries (inside a transaction): the pool
  // listens only to idle ones, and an 'error' nobody listens to ends the process. The next query on it fails
  // (a transient error, retried by the caller) and the pool discards it when it is released.
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.onConnectionLost?.(err));
    prepareMarkedStatements(client);
  });
  return new PostgresDialect({ pool });
}
