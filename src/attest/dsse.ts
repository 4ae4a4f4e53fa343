import { LenixError } from '../core/errors.js';
import { sha256 } from '../ledger/merkle.js';
import { ed25519Verify, type VerifierKey } from '../ledger/note.js';
import type { Statement } from './statements.js';

/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1): the signature covers
 * PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in ASCII decimal bytes.
 */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface Envelope {
  readonly payloadType: string;
  readonly payload: string; // base64
  readonly signatures: readonly { readonly keyid: string; readonly sig: string }[];
}

export function pae(payloadType: string, body: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode(payloadType);
  const head = new TextEncoder().encode(`DSSEv1 ${type.length} `);
  const mid = new TextEncoder().encode(` ${body.length} `);
  const out = new Uint8Array(head.length + type.length + mid.length + body.length);
  out.set(head, 0);
  out.set(type, head.length);
  out.set(mid, head.length + type.length);
  out.set(body, head.length + type.length + mid.length);
  return out;
}

export interface EnvelopeSigner {
  readonly keyid: string;
  sign(message: Uint8Array): Uint8Array;
}

export function signEnvelope(statement: unknown, signers: readonly EnvelopeSigner[]): Envelope {
  const body = new TextEncoder().encode(JSON.stringify(statement));
  const message = pae(IN_TOTO_PAYLOAD_TYPE, body);
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: Buffer.from(body).toString('base64'),
    signatures: signers.map((s) => ({ keyid: s.keyid, sig: Buffer.from(s.sign(message)).toString('base64') })),
  };
}

/**
 * The statement a log entry's envelope carries, read without checking its signature: for indexing and display.
 * Believe it only after `openEnvelope` (or `verifyChain`) checked it.
 */
export function peekStatement(entry: Uint8Array): Statement {
  const env = JSON.parse(Buffer.from(entry).toString('utf8')) as Envelope;
  return JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Statement;
}

/** Check the envelope's Ed25519 signature by `key` (keyid = the verifier key string) and return the statement. */
export function openEnvelope<T = Record<string, unknown>>(env: Envelope, key: VerifierKey, keyid: string): T {
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw new LenixError('SIGNATURE_INVALID', `unexpected payload type ${env.payloadType}`);
  const body = new Uint8Array(Buffer.from(env.payload, 'base64'));
  const sig = env.signatures.find((s) => s.keyid === keyid);
  if (!sig || !ed25519Verify(key, pae(env.payloadType, body), new Uint8Array(Buffer.from(sig.sig, 'base64')))) {
    throw new LenixError('SIGNATURE_INVALID', 'statement signature does not verify');
  }
  return JSON.parse(new TextDecoder().decode(body)) as T;
}

/** The keyid of an ML-DSA-65 public key in envelopes: `mldsa65:` and the first 16 bytes of its SHA-256, hex. */
export function mldsaKeyId(publicKey: Uint8Array): string {
  return `mldsa65:${sha256(publicKey)
    .subarray(0, 16)
    .reduce((s, b) => s + b.toString(16).padStart(2, '0'), '')}`;
}

/** Check a second (post-quantum) signature on an envelope, through a verifier the caller supplies. */
export function checkSecondSignature(
  env: Envelope,
  keyid: string,
  verify: (message: Uint8Array, signature: Uint8Array) => boolean,
): void {
  const sig = env.signatures.find((s) => s.keyid === keyid);
  const body = new Uint8Array(Buffer.from(env.payload, 'base64'));
  if (!sig || !verify(pae(env.payloadType, body), new Uint8Array(Buffer.from(sig.sig, 'base64')))) {
    throw new LenixError('SIGNATURE_INVALID', `the ${keyid.split(':')[0]} signature does not verify`);
  }
}
