import { LenixError } from '../../core/errors.js';
import type { TokenRecord } from '../../store/records.js';
import type { TokenStore } from '../../store/token-store.js';
import { hashToken, newToken, type Caller, type TokenAuthority } from '../auth.js';
import type { ServerDeps } from '../context.js';

/** API tokens: made, listed and revoked by admins (the API and the web pages both come through here). */
export class TokenService {
  constructor(
    private readonly deps: Pick<ServerDeps, 'clock' | 'log'> & {
      readonly store: { readonly tokens: Pick<TokenStore, 'create' | 'list' | 'get' | 'revoke' | 'expireLeasesOf'> };
    },
    private readonly auth: TokenAuthority,
    private readonly reap: () => Promise<void>,
  ) {}

  async create(
    name: string,
    scopes: readonly string[],
    expiresInDays?: number,
  ): Promise<{ record: TokenRecord; secret: string }> {
    const secret = newToken();
    const now = this.deps.clock.now();
    const expiresAt = expiresInDays === undefined ? null : now + expiresInDays * 86_400_000;
    const id = await this.deps.store.tokens.create(name, hashToken(secret), scopes, now, expiresAt);
    return { record: (await this.deps.store.tokens.get(id))!, secret };
  }

  list(): Promise<TokenRecord[]> {
    return this.deps.store.tokens.list();
  }

  /** Refused from the next request on (this server's cache is dropped); leases of agents holding it end now. */
  async revoke(id: number, by: Caller): Promise<TokenRecord> {
    const t = await this.deps.store.tokens.get(id);
    if (!t) throw new LenixError('TOKEN_NOT_FOUND', `no token ${id}`);
    if (t.id === by.tokenId) throw new LenixError('BAD_REQUEST', 'a token cannot revoke itself');
    const now = this.deps.clock.now();
    await this.deps.store.tokens.revoke(t.id, now);
    this.auth.forget();
    const leases = await this.deps.store.tokens.expireLeasesOf(t.id, now);
    await this.reap();
    this.deps.log.info({ component: 'auth', token: t.id, name: t.name, by: by.name, leases }, 'token revoked');
    return (await this.deps.store.tokens.get(t.id))!;
  }
}
