import { createHash, randomBytes } from 'node:crypto';
import { LenixError } from '../core/errors.js';
import type { AgentRole } from '../scheduler/task-state.js';
import type { TokenStore } from '../store/token-store.js';
import type { TokenRecord } from '../store/records.js';
import { Recent } from './recent.js';

/**
 * Scopes: `admin` may do everything; `maintainer` manages sources, builds and the lookaside area; each agent
 * role has its own scope, so a build node's token cannot complete a sign task or create builds.
 */
export type Scope = 'admin' | 'maintainer' | `agent:${AgentRole}`;
export const SCOPES: readonly Scope[] = ['admin', 'maintainer', 'agent:build', 'agent:sign', 'agent:test'];

export function isScope(v: unknown): v is Scope {
  return typeof v === 'string' && (SCOPES as readonly string[]).includes(v);
}

/** A new bearer token: 32 random bytes, with a prefix that secret scanners recognise. */
export function newToken(): string {
  return `lnx_${randomBytes(32).toString('base64url')}`;
}

/** Only the SHA-256 of a token is stored; a database leak does not leak usable tokens. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface Caller {
  readonly tokenId: number;
  readonly name: string;
  readonly scopes: readonly Scope[];
}

export function hasScope(caller: Caller, scope: Scope): boolean {
  return caller.scopes.includes('admin') || caller.scopes.includes(scope);
}

/**
 * Token look-ups are cached briefly: agents send many messages a second. A revocation through this server
 * clears the cache at once (`forget`); other server processes see it within ttl.
 */
export class TokenAuthority {
  private readonly cache: Recent<string, TokenRecord | null>;
  constructor(
    private readonly tokens: Pick<TokenStore, 'findByHash'>,
    ttlMs = 2000,
  ) {
    this.cache = new Recent(ttlMs);
  }

  /** Drop cached look-ups, so that a revoked token fails on its next request. */
  forget(): void {
    this.cache.clear();
  }

  async authenticate(header: string | undefined, now: number): Promise<Caller | null> {
    if (header === undefined) return null;
    const m = /^Bearer ([A-Za-z0-9_\-.]{8,200})$/.exec(header.trim());
    if (!m) throw new LenixError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
    const hash = hashToken(m[1]!);
    const t = await this.cache.get(hash, now, () => this.tokens.findByHash(hash));
    if (!t || t.revokedAt !== null) throw new LenixError('UNAUTHENTICATED', 'unknown or revoked token');
    if (t.expiresAt !== null && now >= t.expiresAt) throw new LenixError('UNAUTHENTICATED', 'the token has expired');
    return { tokenId: t.id, name: t.name, scopes: t.scopes.filter(isScope) };
  }
}

export function requireScope(caller: Caller | null, scope: Scope): Caller {
  if (caller === null) throw new LenixError('UNAUTHENTICATED', `this action needs a token with the ${scope} scope`);
  if (!hasScope(caller, scope)) throw new LenixError('FORBIDDEN', `this action needs the ${scope} scope`);
  return caller;
}
