import { ml_dsa44, ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';

/**
 * ML-DSA (FIPS 204) through @noble/post-quantum: a post-quantum signature next to Ed25519, so that statements
 * stay verifiable if Ed25519 falls. Keys come from a 32-byte seed (FIPS 204 ML-DSA.KeyGen_internal).
 */
export type MlDsaLevel = 44 | 65;

const impl = (level: MlDsaLevel) => (level === 44 ? ml_dsa44 : ml_dsa65);

export function mldsaKeys(level: MlDsaLevel, seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return impl(level).keygen(seed);
}

export function mldsaSign(level: MlDsaLevel, secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return impl(level).sign(message, secretKey);
}

export function mldsaVerify(
  level: MlDsaLevel,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    return impl(level).verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
