import type SQLite from 'better-sqlite3';
import type { Kysely, RawBuilder } from 'kysely';
import type { Db } from './rows.js';
import type { Database } from './schema.js';

/**
 * SQL statements written once for both dialects as Kysely `sql` templates, for the scheduler's hot path (lease,
 * heartbeat, completion: a few thousand transactions a second under load). A builder query costs ~15 µs to
 * build and compile and ~8 µs more in Kysely's executor, per statement, and a cycle runs about twenty
 * (docs/benchmarks.md); a template compiles in 2–4 µs. On SQLite the statements then run synchronously on the
 * connection's cached prepared statements, inside a transaction opened directly on the connection while this
 * process holds Kysely's connection, so no other query can run in between. On PostgreSQL (and on a SQLite
 * handle not opened by `openDatabase`) they run through Kysely on the transaction's client.
 */
export interface Statements {
  /** The rows a statement returns: a select, or a write with `returning`. */
  rows<T>(q: RawBuilder<T>): Promise<T[]>;
  /** Run a write; how many rows it changed. */
  run(q: RawBuilder<unknown>): Promise<number>;
}

/** What `openDatabase` registers for a SQLite database: its connection and its prepared-statement cache. */
export interface SqliteConnection {
  readonly handle: SQLite.Database;
  prepare(text: string): SQLite.Statement;
}

const sqliteConnections = new WeakMap<Kysely<Database>, SqliteConnection>();

export function registerSqlite(db: Kysely<Database>, connection: SqliteConnection): void {
  sqliteConnections.set(db, connection);
}

/** Statements through Kysely on a database or a transaction (any dialect). */
export function kyselyStatements(db: Db): Statements {
  return {
    async rows<T>(q: RawBuilder<T>) {
      return (await q.execute(db)).rows;
    },
    async run(q: RawBuilder<unknown>) {
      return Number((await q.execute(db)).numAffectedRows ?? 0);
    },
  };
}

/** Only while Kysely's connection is held (the callers below): nothing else runs on the handle meanwhile. */
function directStatements(db: Kysely<Database>, c: SqliteConnection): Statements {
  return {
    async rows<T>(q: RawBuilder<T>) {
      const { sql, parameters } = q.compile(db);
      return c.prepare(sql).all(parameters) as T[];
    },
    async run(q: RawBuilder<unknown>) {
      const { sql, parameters } = q.compile(db);
      return c.prepare(sql).run(parameters).changes;
    },
  };
}

/**
 * Run `fn` in one transaction. `fn` must reach the database only through the statements it is given: on
 * SQLite this process holds the connection until `fn` returns, so a query through `db` inside it would wait
 * forever.
 */
export async function inTransaction<T>(db: Kysely<Database>, fn: (q: Statements) => Promise<T>): Promise<T> {
  const c = sqliteConnections.get(db);
  if (!c) return db.transaction().execute((trx) => fn(kyselyStatements(trx)));
  return db.connection().execute(async () => {
    c.prepare('begin').run();
    try {
      const result = await fn(directStatements(db, c));
      c.prepare('commit').run();
      return result;
    } catch (err) {
      // SQLite may have rolled the transaction back already (a full disk, an I/O error).
      if (c.handle.inTransaction) c.prepare('rollback').run();
      throw err;
    }
  });
}

/** Run `fn`'s statements outside a transaction (plain reads), on the connection like `inTransaction`. */
export async function withStatements<T>(db: Kysely<Database>, fn: (q: Statements) => Promise<T>): Promise<T> {
  const c = sqliteConnections.get(db);
  if (!c) return fn(kyselyStatements(db));
  return db.connection().execute(() => fn(directStatements(db, c)));
}
