import type pg from 'pg';

/**
 * Prepared statements on PostgreSQL for the scheduler's hot path (statements.ts). Kysely sends every query
 * unnamed, so the server parses and plans it again each time; the hot path's few dozen statement texts are
 * instead prepared once per connection under a name and then only bound and executed. Under load that is
 * most of PostgreSQL's CPU a statement (docs/benchmarks.md).
 *
 * Only texts marked here are prepared, and at most MAX_PREPARED of them, so a connection never accumulates
 * statements without bound. A connection whose prepared statement no longer fits the schema (another
 * server's migration changed a table that a `returning *` reads: PostgreSQL's "cached plan must not change
 * result type") fails that one statement, and prepares it again under a new name on its next use.
 */
const MAX_PREPARED = 256;
const names = new Map<string, string>();

/** Prepare `text` on every connection from now on (a no-op once MAX_PREPARED texts are known). */
export function markPrepared(text: string): void {
  if (!names.has(text) && names.size < MAX_PREPARED) names.set(text, `lenix_${names.size}`);
}

/** PostgreSQL's code for "cached plan must not change result type" (feature_not_supported). */
const PLAN_CHANGED = '0A000';

type Query = (...args: unknown[]) => unknown;

/**
 * Make `client` (a pool's new connection) run marked texts as named statements. Kysely's PostgreSQL driver
 * calls `query(text, values)` and awaits the promise; everything else passes through unchanged.
 */
export function prepareMarkedStatements(client: pg.Client): void {
  const query = client.query.bind(client) as Query;
  let generation = 0;
  const named: Query = (...args) => {
    const [text, values] = args;
    const name = args.length === 2 && typeof text === 'string' && Array.isArray(values) ? names.get(text) : undefined;
    if (name === undefined) return query(...args);
    const result = query({ name: `${name}_${generation}`, text, values }) as Promise<unknown>;
    return result.catch((err: unknown) => {
      if ((err as { code?: unknown }).code === PLAN_CHANGED) generation++;
      throw err;
    });
  };
  client.query = named as typeof client.query;
}
