import { LenixError } from '../core/errors.js';
import { HASH_SIZE, type Hash } from './merkle.js';

/**
 * C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature): the messages a cosigner signs, and the
 * `timestamped_signature` it returns (u64 big-endian POSIX seconds ‖ signature).
 *
 * - Ed25519 (signature type 0x04) signs `cosignature/v1\ntime <ts>\n` followed by the checkpoint body.
 * - ML-DSA-44 (signature type 0x06) signs the binary `cosigned_message`, which commits to the cosigner's
 *   name, the log origin, the subtree [start, end) and its root hash — not to checkpoint extension lines.
 */
export const ED25519_SIG_SIZE = 64;
export const MLDSA44_SIG_SIZE = 2420;
const LABEL = new TextEncoder().encode('subtree/v1\n\0');
const MAX_TIMESTAMP = 2n ** 63n - 1n;

export function ed25519CosignedMessage(checkpointText: string, timestamp: bigint): Uint8Array {
  return new TextEncoder().encode(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`);
}

export interface Subtree {
  readonly cosigner: string;
  readonly timestamp: bigint;
  readonly origin: string;
  readonly start: number;
  readonly end: number;
  readonly hash: Hash;
}

function opaque8(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length < 1 || bytes.length > 255)
    throw new LenixError('BAD_REQUEST', 'a cosigner name and a log origin are 1 to 255 bytes');
  return Uint8Array.of(bytes.length, ...bytes);
}

export function mldsaCosignedMessage(s: Subtree): Uint8Array {
  if (s.hash.length !== HASH_SIZE) throw new LenixError('BAD_REQUEST', 'a subtree hash is 32 bytes');
  if (s.start !== 0 && s.timestamp !== 0n)
    throw new LenixError('BAD_REQUEST', 'a subtree that does not start at 0 carries no timestamp');
  const name = opaque8(s.cosigner);
  const origin = opaque8(s.origin);
  const out = new Uint8Array(LABEL.length + name.length + 8 + origin.length + 8 + 8 + HASH_SIZE);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(LABEL, at);
  at += LABEL.length;
  out.set(name, at);
  at += name.length;
  view.setBigUint64(at, s.timestamp);
  at += 8;
  out.set(origin, at);
  at += origin.length;
  view.setBigUint64(at, BigInt(s.start));
  at += 8;
  view.setBigUint64(at, BigInt(s.end));
  at += 8;
  out.set(s.hash, at);
  return out;
}

export function encodeTimestamped(timestamp: bigint, signature: Uint8Array): Uint8Array {
  if (timestamp < 0n || timestamp > MAX_TIMESTAMP)
    throw new LenixError('BAD_REQUEST', 'cosignature timestamp out of range');
  const out = new Uint8Array(8 + signature.length);
  new DataView(out.buffer).setBigUint64(0, timestamp);
  out.set(signature, 8);
  return out;
}

/** Split a timestamped signature; null when its length is not 8 + `size` or the timestamp is out of range. */
export function decodeTimestamped(blob: Uint8Array, size: number): { timestamp: bigint; signature: Uint8Array } | null {
  if (blob.length !== 8 + size) return null;
  const timestamp = new DataView(blob.buffer, blob.byteOffset, 8).getBigUint64(0);
  if (timestamp > MAX_TIMESTAMP) return null;
  return { timestamp, signature: blob.subarray(8) };
}
