import { readFile } from 'node:fs/promises';
import { LenixError } from '../core/errors.js';

/** The pinned keys a verification checks against (`--log-key`, `--witness-key`, `--pq-key`). */
export interface Pins {
  readonly logKeys: string[];
  /** The log's (first) Ed25519 key: remembered checkpoints are kept per log, named by it. */
  readonly logKey: string;
  readonly witnesses?: string[];
  readonly pq?: { keyid: string; verify(m: Uint8Array, s: Uint8Array): boolean };
}

export async function pins(o: { logKey?: string[]; witnessKey?: string[]; pqKey?: string }): Promise<Pins> {
  const logKeys =
    o.logKey ?? (process.env['LENIX_LOG_KEY'] ? process.env['LENIX_LOG_KEY'].split(/\s+/).filter(Boolean) : []);
  // The proof checking loads only here; the post-quantum library only when an ML-DSA key is pinned.
  const keyType = (k: string) => Buffer.from(k.split('+')[2] ?? '', 'base64')[0];
  const { SIG_ED25519, SIG_COSIGNATURE_MLDSA44 } = await import('../ledger/note.js');
  if ([...logKeys, ...(o.witnessKey ?? [])].some((k) => keyType(k) === SIG_COSIGNATURE_MLDSA44))
    await import('../ledger/note-mldsa.js');
  const logKey = logKeys.find((k) => keyType(k) === SIG_ED25519) ?? logKeys[0];
  if (!logKey)
    throw new LenixError(
      'BAD_REQUEST',
      'pin the ledger key with --log-key (printed by lenix up, served at /ledger/key)',
    );
  let pq: Pins['pq'];
  if (o.pqKey) {
    const text =
      /^[A-Za-z0-9+/=\s]+$/.test(o.pqKey) && o.pqKey.length > 100 ? o.pqKey : await readFile(o.pqKey, 'utf8');
    const pub = new Uint8Array(Buffer.from(text.trim(), 'base64'));
    const [{ mldsaKeyId }, { mldsaVerify }] = await Promise.all([
      import('../attest/dsse.js'),
      import('../crypto/mldsa.js'),
    ]);
    pq = { keyid: mldsaKeyId(pub), verify: (m, sg) => mldsaVerify(65, pub, m, sg) };
  }
  return { logKeys, logKey, ...(o.witnessKey ? { witnesses: o.witnessKey } : {}), ...(pq ? { pq } : {}) };
}
