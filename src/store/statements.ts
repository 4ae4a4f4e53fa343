import type SQLite from 'better-sqlite3';
import type { Compilable, CompiledQuery, Kysely, RawBuilder } from 'kysely';
import type { Db } from './rows.js';
import type { Database } from './schema.js';
import { markPrepared } from './pg-prepared.js';

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

/**
 * Statements through Kysely on a database or a transaction (any dialect). On PostgreSQL each text is prepared
 * once per connection (pg-prepared.ts).
 */
export function kyselyStatements(db: Db): Statements {
  const compile = <T>(q: RawBuilder<T>) => {
    const compiled = q.compile(db);
    markPrepared(compiled.sql);
    return compiled;
  };
  return {
    async rows<T>(q: RawBuilder<T>) {
      return (await db.executeQuery(compile(q))).rows;
    },
    async run(q: RawBuilder<unknown>) {
      return Number((await db.executeQuery(compile(q))).numAffectedRows ?? 0);
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
 * SQLite this process holds the connection while `fn` runs, so a query through `db` inside it would wait
 * forever.
 */
export async function inTransaction<T>(db: Kysely<Database>, fn: (q: Statements) => Promise<T>): Promise<T> {
  const c = sqliteConnections.get(db);
  if (!c) return db.transaction().execute((trx) => fn(kyselyStatements(trx)));
  return commitGroup(db, c).run(fn);
}

function commitGroup(db: Kysely<Database>, c: SqliteConnection): CommitGroup {
  let group = commitGroups.get(db);
  if (!group) {
    group = new CommitGroup(db, c);
    commitGroups.set(db, group);
  }
  return group;
}

/** A caller waiting in a commit group: what it asked to run, and how to answer it. */
interface Pending<F> {
  readonly fn: F;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

const commitGroups = new WeakMap<Kysely<Database>, CommitGroup>();

/**
 * Group commit on SQLite: the transactions asked for in one turn of the event loop run one after the other,
 * each in its own savepoint, inside one database transaction that commits once at the end of the turn. A
 * commit writes every page the transaction changed to the WAL, and the scheduler's transactions change the
 * same few pages, so under load this writes far less; with one request in the turn it is a plain
 * transaction. Each caller is answered only after the commit: a transaction that failed is rolled back to its
 * savepoint and rejected without touching the others, and if the commit fails (or SQLite dropped the
 * transaction), every caller of the group is rejected. Reads by id asked for in the same turn run first, in
 * the same transaction, and are answered at once (a read transaction of its own, and a hold of the connection
 * of its own, cost more than the read).
 */
class CommitGroup {
  private pending: Pending<(q: Statements) => Promise<unknown>>[] = [];
  private reads: Pending<() => unknown>[] = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly c: SqliteConnection,
  ) {}

  run<T>(fn: (q: Statements) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.schedule();
      this.pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /**
   * A synchronous read on the connection, run with the turn's group before its writes (so it sees only what is
   * committed) and answered at once: one read transaction and one hold of the connection for all of them.
   */
  read<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.schedule();
      this.reads.push({ fn, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private schedule(): void {
    if (this.pending.length === 0 && this.reads.length === 0) setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    const [group, reads] = [this.pending, this.reads];
    [this.pending, this.reads] = [[], []];
    const { c } = this;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      await this.db.connection().execute(async () => {
        const q = directStatements(this.db, c);
        c.prepare('begin').run();
        try {
          for (const r of reads) {
            try {
              r.resolve(r.fn());
            } catch (err) {
              if (!c.handle.inTransaction) throw err;
              r.reject(err);
            }
          }
          for (const p of group) {
            c.prepare('savepoint grouped').run();
            try {
              outcomes.push({ ok: true, value: await p.fn(q) });
              c.prepare('release grouped').run();
            } catch (err) {
              if (!c.handle.inTransaction) throw err; // SQLite rolled back everything (a full disk, an I/O error)
              c.prepare('rollback to grouped').run();
              c.prepare('release grouped').run();
              outcomes.push({ ok: false, value: err });
            }
          }
          c.prepare('commit').run();
        } catch (err) {
          if (c.handle.inTransaction) c.prepare('rollback').run();
          throw err;
        }
      });
    } catch (err) {
      for (const p of [...reads, ...group]) p.reject(err);
      return;
    }
    group.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.value);
      else p.reject(o.value);
    });
  }
}

/** Run `fn`'s statements outside a transaction (plain reads), on the connection like `inTransaction`. */
export async function withStatements<T>(db: Kysely<Database>, fn: (q: Statements) => Promise<T>): Promise<T> {
  const c = sqliteConnections.get(db);
  if (!c) return fn(kyselyStatements(db));
  return db.connection().execute(() => fn(directStatements(db, c)));
}

/**
 * A read by id on the hot path (the build of a task, the agent of a lease), still spelled as a builder query
 * but compiled once: each call binds only the id. `query` must have the id as its one parameter.
 */
export function readById<Row>(
  db: Kysely<Database>,
  query: (id: number) => Compilable<Row>,
): (id: number) => Promise<Row | undefined> {
  let compiled: CompiledQuery<Row> | undefined;
  return async (id) => {
    if (compiled === undefined) {
      compiled = query(-1).compile();
      if (compiled.parameters.length !== 1 || compiled.parameters[0] !== -1)
        throw new Error(`readById: the query must take the id as its only parameter: ${compiled.sql}`);
    }
    const { sql } = compiled;
    const c = sqliteConnections.get(db);
    if (c) return commitGroup(db, c).read(() => c.prepare(sql).get(id) as Row | undefined);
    // The compiled select itself with the id bound, so read routing still sees a plain select (read-routing.ts).
    markPrepared(sql);
    const { rows } = await db.executeQuery<Row>({ ...compiled, parameters: [id] });
    return rows[0];
  };
}
