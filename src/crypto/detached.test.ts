import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LenixError } from '../core/errors.js';
import { verifyDetached } from './detached.js';
import { detachSign, exportPublicKey, generateKey, withTempHome } from './gpg.js';

const refused = async (p: Promise<unknown>) =>
  assert.rejects(p, (e: unknown) => e instanceof LenixError && e.code === 'SIGNATURE_INVALID');

test('detached signatures made by gpg verify in process against the key that made them, and nothing else', async () => {
  await withTempHome(async (home) => {
    const data = Buffer.from('<repomd>one</repomd>\n');
    for (const algorithm of ['ed25519', 'rsa4096'] as const) {
      const key = await generateKey(home, `repo ${algorithm}`, algorithm);
      const publicKey = await exportPublicKey(home, key.fingerprint);
      const signature = await detachSign(home, key.fingerprint, data);
      assert.equal(await verifyDetached(publicKey, data, signature), key.fingerprint);
      // Other bytes, another key's signature, a truncated or garbled signature: refused with a code.
      await refused(verifyDetached(publicKey, Buffer.from('<repomd>two</repomd>\n'), signature));
      const other = await generateKey(home, `other ${algorithm}`, algorithm);
      await refused(verifyDetached(publicKey, data, await detachSign(home, other.fingerprint, data)));
      await refused(verifyDetached(publicKey, data, signature.slice(0, signature.length / 2)));
      await refused(verifyDetached(publicKey, data, 'not a signature'));
      await refused(verifyDetached('not a key', data, signature));
    }
  });
});
