import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import { sql, type Kysely } from 'kysely';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasScope, type Caller } from './auth.js';
import { LSN, type ReplicaReads } from '../store/read-routing.js';
import type { Database } from '../store/schema.js';

/**
 * Which requests read from the PostgreSQL replica (`--database-read-url`), and read-your-writes for clients.
 *
 * A GET or HEAD by anyone but an agent runs in a replica scope (read-routing.ts), unless its route says
 * `config: { primaryReads: true }` (health and readiness check the primary). Agents always read the primary:
 * they act on what they read. After a successful write by a non-agent, the response carries the primary's WAL
 * position as the `Lenix-Read-After` header and a cookie of the same name; a client sending either back reads
 * from the replica only once it has replayed that far (the CLI's ApiClient and browsers do so).
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's reads go to the primary even when a replica is configured. */
    primaryReads?: boolean;
  }
}

export const READ_AFTER_HEADER = 'lenix-read-after';
const READ_AFTER_COOKIE = 'lenix_read_after';
/** Long enough for any replica to catch up; after that the cookie is just noise. */
const COOKIE_SECONDS = 300;

const isAgent = (c: Caller | null) =>
  c !== null && !hasScope(c, 'maintainer') && c.scopes.some((s) => s.startsWith('agent:'));
const reads = (req: FastifyRequest) => req.method === 'GET' || req.method === 'HEAD';

function readAfter(req: FastifyRequest): string | null {
  const header = req.headers[READ_AFTER_HEADER];
  const fromHeader = typeof header === 'string' && LSN.test(header) ? header : null;
  const cookie = parseCookie(req.headers.cookie ?? '')[READ_AFTER_COOKIE];
  const fromCookie = cookie && LSN.test(cookie) ? cookie : null;
  return fromHeader ?? fromCookie;
}

/** Registers the hooks; call after the hook that authenticates the caller. */
export function registerReplicaReads(app: FastifyInstance, replica: ReplicaReads, db: Kysely<Database>): void {
  app.addHook('onRequest', (req, _reply, done) => {
    if (!reads(req) || isAgent(req.caller) || req.routeOptions.config.primaryReads === true) return done();
    replica.run(readAfter(req), done);
  });
  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reads(req) || reply.statusCode >= 400 || isAgent(req.caller)) return payload;
    // The write is done: failing to learn the position only costs this client read-your-writes, not its answer.
    const r = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db).catch((err: unknown) => {
      req.log.warn({ err }, 'no WAL position for read-your-writes');
      return null;
    });
    const lsn = r?.rows[0]?.lsn;
    if (!lsn) return payload;
    void reply.header(READ_AFTER_HEADER, lsn);
    void reply.header(
      'set-cookie',
      serializeCookie(READ_AFTER_COOKIE, lsn, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: COOKIE_SECONDS }),
    );
    return payload;
  });
}
