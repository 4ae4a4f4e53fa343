import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TokenRecord } from '../store/records.js';
import { TokenAuthority, hashToken, newToken } from './auth.js';

test('expired and revoked tokens are refused; forget() makes a revocation count at once', async () => {
  const secret = newToken();
  let record: TokenRecord = {
    id: 7,
    name: 'node',
    scopes: ['agent:build'],
    createdAt: 0,
    revokedAt: null,
    expiresAt: 10_000,
  };
  let lookups = 0;
  const auth = new TokenAuthority({
    findByHash: async (hash) => {
      lookups++;
      return hash === hashToken(secret) ? record : null;
    },
  });
  const header = `Bearer ${secret}`;
  assert.deepEqual(await auth.authenticate(header, 1_000), { tokenId: 7, name: 'node', scopes: ['agent:build'] });
  await assert.rejects(auth.authenticate(header, 10_000), { code: 'UNAUTHENTICATED' }, 'expired at its expiry time');
  await assert.rejects(auth.authenticate(`Bearer ${newToken()}`, 1_000), { code: 'UNAUTHENTICATED' });
  record = { ...record, expiresAt: null, revokedAt: 2_000 };
  await auth.authenticate(header, 2_001).then(
    () => undefined,
    () => assert.fail('a cached look-up may still pass within the cache time'),
  );
  auth.forget();
  const before = lookups;
  await assert.rejects(auth.authenticate(header, 2_002), { code: 'UNAUTHENTICATED' });
  assert.equal(lookups, before + 1, 'looked up again after forget()');
  assert.equal(await auth.authenticate(undefined, 0), null, 'no header: anonymous');
});
