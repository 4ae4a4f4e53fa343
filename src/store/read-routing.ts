import { AsyncLocalStorage } from 'node:async_hooks';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { isTransientDbError } from './rows.js';

/**
 * Reads from a PostgreSQL streaming replica (issue 16, `--database-read-url`).
 *
 * Only code running inside `ReplicaReads.run` may read from the replica: the server runs a public GET there
 * (replica-reads.ts). Inside it, a plain SELECT outside a transaction goes to the replica; everything else —
 * writes, raw SQL, every statement of a transaction, and any SELECT after the scope wrote — goes to the
 * primary, so nothing that decides a write reads stale rows. Read-your-writes: a client that wrote carries
 * the primary's WAL position at its write (`after`); its reads use the replica only once the replica has
 * replayed that far, else the primary. A replica that fails is left alone for a while; reads go to the primary.
 */

/** A PostgreSQL WAL position as `pg_lsn` prints it (`16/B374D848`). */
export const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

/** One request that may read from the replica. */
export interface ReadScope {
  /** The primary's WAL position at this client's last write, or null. */
  readonly after: string | null;
  /** Set once decided: whether this scope reads from the replica. */
  replica?: Promise<boolean>;
  /** The scope wrote: its later reads go to the primary. */
  wrote?: boolean;
}

/** The read scope of the code running now (one per process: a scope is a request's, whichever server's). */
const scopes = new AsyncLocalStorage<ReadScope>();

/** Runs `fn` (and everything it starts) outside any read scope: all its statements go to the primary. */
export function onPrimary<T>(fn: () => T): T {
  return scopes.exit(fn);
}

/**
 * `target` with every method call run outside any read scope: for state this process keeps in memory in step
 * with the database (the ledger's Merkle tree), which a replica a little behind would make it take for lost.
 */
export function primaryOnly<T extends object>(target: T): T {
  return new Proxy(target, {
    get(obj, key, receiver) {
      const v: unknown = Reflect.get(obj, key, receiver);
      return typeof v === 'function' ? (...args: unknown[]) => onPrimary(() => v.apply(obj, args)) : v;
    },
  });
}

export class ReplicaReads {
  private downUntil = 0;
  /** Statements the replica answered; scopes sent to the primary because the replica lagged; replica failures. */
  readonly stats = { replicaQueries: 0, laggedScopes: 0, replicaFailures: 0 };

  constructor(
    private readonly now: () => number = Date.now,
    /** How long a failed replica is left alone. */
    private readonly backoffMs = 5_000,
  ) {}

  /** Runs `fn` (and everything it starts) as a scope whose plain reads may use the replica. */
  run<T>(after: string | null, fn: () => T): T {
    return scopes.run({ after: after !== null && LSN.test(after) ? after : null }, fn);
  }

  current(): ReadScope | undefined {
    return scopes.getStore();
  }

  replicaDown(): void {
    this.stats.replicaFailures++;
    this.downUntil = this.now() + this.backoffMs;
  }

  replicaUsable(): boolean {
    return this.now() >= this.downUntil;
  }
}

const isPlainSelect = (q: CompiledQuery) =>
  q.query.kind === 'SelectQueryNode' && !/\bfor\s+(update|share|no key update|key share)\b/i.test(q.sql);

/** A connection that picks primary or replica per statement and holds at most one of each. */
class RoutingConnection implements DatabaseConnection {
  private primaryConn: DatabaseConnection | null = null;
  private replicaConn: DatabaseConnection | null = null;
  /** In a transaction: every statement goes to the primary. */
  pinned = false;

  constructor(private readonly d: RoutingDriver) {}

  async primary(): Promise<DatabaseConnection> {
    this.primaryConn ??= await this.d.primary.acquireConnection();
    return this.primaryConn;
  }

  private async replica(): Promise<DatabaseConnection> {
    this.replicaConn ??= await this.d.replica.acquireConnection();
    return this.replicaConn;
  }

  /** Whether this statement may be answered by the replica (deciding the scope's lag once). */
  private async useReplica(q: CompiledQuery): Promise<boolean> {
    const scope = this.d.reads.current();
    if (!scope || this.pinned || scope.wrote) return false;
    if (!isPlainSelect(q)) {
      scope.wrote = true;
      return false;
    }
    if (!this.d.reads.replicaUsable()) return false;
    scope.replica ??= this.caughtUp(scope.after);
    return scope.replica;
  }

  private async caughtUp(after: string | null): Promise<boolean> {
    if (after === null) return true;
    try {
      const r = await (await this.replica()).executeQuery<{ ok: boolean }>(
        CompiledQuery.raw('select (not pg_is_in_recovery() or pg_last_wal_replay_lsn() >= $1::pg_lsn) as ok', [after]),
      );
      if (r.rows[0]?.ok === true) return true;
      this.d.reads.stats.laggedScopes++;
      return false;
    } catch (err) {
      await this.dropReplica(err);
      return false;
    }
  }

  private async dropReplica(err: unknown): Promise<void> {
    if (!isTransientDbError(err)) throw err;
    this.d.reads.replicaDown();
    const conn = this.replicaConn;
    this.replicaConn = null;
    if (conn) await this.d.replica.releaseConnection(conn).catch(() => undefined);
  }

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    if (await this.useReplica(q)) {
      try {
        const r = await (await this.replica()).executeQuery<R>(q);
        this.d.reads.stats.replicaQueries++;
        return r;
      } catch (err) {
        await this.dropReplica(err); // the same statement again on the primary
      }
    }
    return (await this.primary()).executeQuery<R>(q);
  }

  async *streamQuery<R>(q: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const conn = (await this.useReplica(q)) ? await this.replica() : await this.primary();
    yield* conn.streamQuery<R>(q, chunkSize);
  }

  async release(): Promise<void> {
    const [p, r] = [this.primaryConn, this.replicaConn];
    this.primaryConn = this.replicaConn = null;
    if (p) await this.d.primary.releaseConnection(p);
    if (r) await this.d.replica.releaseConnection(r);
  }
}

class RoutingDriver implements Driver {
  constructor(
    readonly primary: Driver,
    readonly replica: Driver,
    readonly reads: ReplicaReads,
  ) {}

  async init(): Promise<void> {
    await this.primary.init();
    await this.replica.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new RoutingConnection(this);
  }

  private async pinned(c: DatabaseConnection): Promise<DatabaseConnection> {
    const rc = c as RoutingConnection;
    rc.pinned = true;
    return rc.primary();
  }

  async beginTransaction(c: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await this.primary.beginTransaction(await this.pinned(c), settings);
  }

  async commitTransaction(c: DatabaseConnection): Promise<void> {
    await this.primary.commitTransaction(await this.pinned(c));
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    await this.primary.rollbackTransaction(await this.pinned(c));
  }

  async savepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.primary.savepoint?.(await this.pinned(c), name, compile);
  }

  async rollbackToSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await this.primary.rollbackToSavepoint?.(await this.pinned(c), name, compile);
  }

  async releaseSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await this.primary.releaseSavepoint?.(await this.pinned(c), name, compile);
  }

  async releaseConnection(c: DatabaseConnection): Promise<void> {
    await (c as RoutingConnection).release();
  }

  async destroy(): Promise<void> {
    await Promise.all([this.primary.destroy(), this.replica.destroy()]);
  }
}

/** A dialect that is `primary` for everything and sends scoped plain reads to `replica` (same SQL dialect). */
export function readRoutingDialect(primary: Dialect, replica: Dialect, reads: ReplicaReads): Dialect {
  return {
    createAdapter: () => primary.createAdapter(),
    createDriver: () => new RoutingDriver(primary.createDriver(), replica.createDriver(), reads),
    createIntrospector: (db) => primary.createIntrospector(db),
    createQueryCompiler: () => primary.createQueryCompiler(),
  };
}
