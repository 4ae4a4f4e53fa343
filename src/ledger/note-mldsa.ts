import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { type Checkpoint, parseCheckpoint } from './checkpoint.js';
import { MLDSA44_SIG_SIZE, decodeTimestamped, encodeTimestamped, mldsaCosignedMessage } from './cosignature.js';
import {
  type NoteSigner,
  SIG_COSIGNATURE_MLDSA44,
  type VerifierKey,
  formatVerifierKey,
  parseVerifierKey,
  registerMldsaNoteVerifier,
} from './note.js';

/**
 * ML-DSA-44 checkpoint cosignatures (signed-note type 0x06) through @noble/post-quantum, apart from note.ts so
 * that only what signs or checks them loads the library (a `lenix verify` of Ed25519 proofs starts faster).
 * Importing this module registers the verifier with note.ts.
 */
export function verifyMldsaCosignature(key: VerifierKey, text: string, signature: Uint8Array): boolean {
  const t = decodeTimestamped(signature, MLDSA44_SIG_SIZE);
  if (!t) return false;
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(text);
  } catch {
    return false;
  }
  const message = mldsaCosignedMessage({
    cosigner: key.name,
    timestamp: t.timestamp,
    origin: cp.origin,
    start: 0,
    end: cp.size,
    hash: cp.root,
  });
  try {
    return ml_dsa44.verify(t.signature, message, key.publicKey);
  } catch {
    return false;
  }
}

registerMldsaNoteVerifier(verifyMldsaCosignature);

/** An ML-DSA-44 checkpoint cosigner (type 0x06) from a 32-byte seed (FIPS 204 ML-DSA.KeyGen_internal). */
export function mldsa44Cosigner(
  name: string,
  seed: Uint8Array,
  now: () => number,
): NoteSigner & { publicKey: Uint8Array } {
  const { publicKey, secretKey } = ml_dsa44.keygen(seed);
  const verifierKey = formatVerifierKey(name, publicKey, SIG_COSIGNATURE_MLDSA44);
  return {
    name,
    keyHash: parseVerifierKey(verifierKey).keyHash,
    publicKey,
    verifierKey,
    signNote: (text) => {
      const cp = parseCheckpoint(text);
      const timestamp = BigInt(Math.floor(now() / 1000));
      const message = mldsaCosignedMessage({
        cosigner: name,
        timestamp,
        origin: cp.origin,
        start: 0,
        end: cp.size,
        hash: cp.root,
      });
      return encodeTimestamped(timestamp, ml_dsa44.sign(message, secretKey));
    },
  };
}
