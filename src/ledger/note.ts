import { type KeyObject, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify } from 'node:crypto';
import { LenixError } from '../core/errors.js';
import { parseCheckpoint } from './checkpoint.js';
import { ED25519_SIG_SIZE, decodeTimestamped, ed25519CosignedMessage, encodeTimestamped } from './cosignature.js';
import { sha256 } from './merkle.js';

/**
 * C2SP signed-note (https://c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, then one
 * line per signature, `— <key name> <base64(key hash ‖ signature)>`. A verifier key is
 * `<name>+<hex key hash>+<base64(type ‖ public key)>`; the key hash is the first 4 bytes of
 * SHA-256(name ‖ "\n" ‖ type ‖ public key). Three types are understood:
 * - 0x01 Ed25519 over the note text (the log's own signature);
 * - 0x04 timestamped Ed25519 cosignature and 0x06 timestamped ML-DSA-44 cosignature of a checkpoint
 *   (C2SP tlog-cosignature, cosignature.ts): witnesses use them, and the log signs its checkpoints with an
 *   ML-DSA-44 cosignature too, as C2SP tlog-checkpoint recommends.
 */
export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_ED25519 = 0x04;
export const SIG_COSIGNATURE_MLDSA44 = 0x06;
const KEY_SIZES: Readonly<Record<number, number>> = {
  [SIG_ED25519]: 32,
  [SIG_COSIGNATURE_ED25519]: 32,
  [SIG_COSIGNATURE_MLDSA44]: 1312,
};
const EM_DASH = '\u2014';
const MAX_SIGNATURES = 100;
const NAME_RE = /^[^\s+\u2014]+$/u;

export interface VerifierKey {
  readonly name: string;
  readonly keyHash: number;
  readonly type: number;
  readonly publicKey: Uint8Array; // raw key: 32-byte Ed25519 or 1312-byte ML-DSA-44
}

export interface NoteSigner {
  readonly name: string;
  readonly keyHash: number;
  readonly verifierKey: string;
  /** The signature bytes (without the key hash) for a note text. */
  signNote(text: string): Uint8Array;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyHash: number;
  readonly signature: Uint8Array;
}

function fail(why: string): never {
  throw new LenixError('SIGNATURE_INVALID', why);
}

export function keyHash(name: string, typeAndKey: Uint8Array): number {
  const h = sha256(new TextEncoder().encode(`${name}\n`), typeAndKey);
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

export function formatVerifierKey(name: string, publicKey: Uint8Array, type = SIG_ED25519): string {
  if (!NAME_RE.test(name)) fail('key names may not contain spaces, + or —');
  if (KEY_SIZES[type] !== publicKey.length)
    fail(`a type 0x${type.toString(16)} key is ${KEY_SIZES[type] ?? '?'} bytes`);
  const material = new Uint8Array(1 + publicKey.length);
  material[0] = type;
  material.set(publicKey, 1);
  return `${name}+${hex8(keyHash(name, material))}+${Buffer.from(material).toString('base64')}`;
}

export function parseVerifierKey(text: string): VerifierKey {
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  if (first <= 0 || second < 0) fail('a verifier key is name+hash+key');
  const name = text.slice(0, first);
  const hash = text.slice(first + 1, second);
  const b64 = text.slice(second + 1).trim();
  if (!NAME_RE.test(name) || !/^[0-9a-f]{8}$/.test(hash)) fail('malformed verifier key name or hash');
  const material = new Uint8Array(Buffer.from(b64, 'base64'));
  if (Buffer.from(material).toString('base64') !== b64) fail('verifier key is not canonical base64');
  const type = material[0] ?? -1;
  if (KEY_SIZES[type] === undefined)
    fail(
      `unsupported verifier key type ${type} (Lenix reads 0x01 Ed25519, 0x04 Ed25519 cosignature, 0x06 ML-DSA-44 cosignature)`,
    );
  if (material.length !== 1 + KEY_SIZES[type]!)
    fail(`a type 0x${type.toString(16).padStart(2, '0')} key is ${KEY_SIZES[type]} bytes`);
  if (keyHash(name, material) !== parseInt(hash, 16)) fail('verifier key hash does not match its key');
  return { name, keyHash: parseInt(hash, 16), type, publicKey: material.slice(1) };
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function ed25519Key(seed: Uint8Array) {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = new Uint8Array(
    createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length),
  );
  return { publicKey, sign: (m: Uint8Array) => new Uint8Array(edSign(null, m, key)) };
}

/** An Ed25519 note signer (type 0x01) from a 32-byte seed; `sign` also signs raw messages (DSSE). */
export function ed25519Signer(
  name: string,
  seed: Uint8Array,
): NoteSigner & { publicKey: Uint8Array; sign(message: Uint8Array): Uint8Array } {
  const k = ed25519Key(seed);
  const verifierKey = formatVerifierKey(name, k.publicKey);
  const enc = new TextEncoder();
  return {
    name,
    keyHash: parseVerifierKey(verifierKey).keyHash,
    publicKey: k.publicKey,
    verifierKey,
    sign: k.sign,
    signNote: (text) => k.sign(enc.encode(text)),
  };
}

/** A checkpoint cosigner: `now` gives the POSIX time in milliseconds for the signature's timestamp. */
export function ed25519Cosigner(
  name: string,
  seed: Uint8Array,
  now: () => number,
): NoteSigner & { publicKey: Uint8Array } {
  const k = ed25519Key(seed);
  const verifierKey = formatVerifierKey(name, k.publicKey, SIG_COSIGNATURE_ED25519);
  return {
    name,
    keyHash: parseVerifierKey(verifierKey).keyHash,
    publicKey: k.publicKey,
    verifierKey,
    signNote: (text) => {
      parseCheckpoint(text);
      const ts = BigInt(Math.floor(now() / 1000));
      return encodeTimestamped(ts, k.sign(ed25519CosignedMessage(text, ts)));
    },
  };
}

/** Parse `PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)` (the reference implementation's signer key encoding). */
export function parseSignerKey(text: string): ReturnType<typeof ed25519Signer> {
  const m = /^PRIVATE\+KEY\+([^+]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text);
  if (!m) fail('a signer key is PRIVATE+KEY+name+hash+key');
  const material = new Uint8Array(Buffer.from(m[3]!, 'base64'));
  if (material.length !== 33 || material[0] !== SIG_ED25519) fail('only Ed25519 signer keys are supported');
  const s = ed25519Signer(m[1]!, material.slice(1));
  if (s.keyHash !== parseInt(m[2]!, 16)) fail('signer key hash does not match its key');
  return s;
}

/**
 * Key objects of the Ed25519 keys checked lately, by the raw key's bytes: a proof bundle's statements and its
 * checkpoint are all checked with the same one or two keys.
 */
const publicKeys = new Map<string, KeyObject>();

export function ed25519Verify(key: VerifierKey, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || key.publicKey.length !== 32) return false;
  const raw = Buffer.from(key.publicKey.buffer, key.publicKey.byteOffset, key.publicKey.byteLength);
  const id = raw.toString('base64');
  let pub = publicKeys.get(id);
  if (!pub) {
    pub = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
    if (publicKeys.size >= 64) publicKeys.clear();
    publicKeys.set(id, pub);
  }
  return edVerify(null, message, pub, signature);
}

type NoteVerifier = (key: VerifierKey, text: string, signature: Uint8Array) => boolean;
let mldsaNoteVerifier: NoteVerifier | null = null;

/** Called by note-mldsa.ts when it loads: ML-DSA-44 cosignatures (type 0x06) can be checked from then on. */
export function registerMldsaNoteVerifier(verify: NoteVerifier): void {
  mldsaNoteVerifier = verify;
}

/** Check one note signature by its key's type; cosignatures also need the text to be a checkpoint. */
export function verifyNoteSignature(key: VerifierKey, text: string, signature: Uint8Array): boolean {
  switch (key.type) {
    case SIG_ED25519:
      return ed25519Verify(key, new TextEncoder().encode(text), signature);
    case SIG_COSIGNATURE_ED25519: {
      const t = decodeTimestamped(signature, ED25519_SIG_SIZE);
      return t !== null && ed25519Verify(key, ed25519CosignedMessage(text, t.timestamp), t.signature);
    }
    case SIG_COSIGNATURE_MLDSA44:
      // Registered by note-mldsa.ts (the post-quantum library loads only where it is used); without it an
      // ML-DSA cosignature never verifies, so a check that requires one fails closed.
      return mldsaNoteVerifier?.(key, text, signature) ?? false;
    default:
      return false;
  }
}

/** Sign a note text (which must end in a newline) with each signer; existing signatures may be kept. */
export function signNote(text: string, signers: readonly NoteSigner[], keep: readonly NoteSignature[] = []): string {
  if (!text.endsWith('\n') || text.includes('\n\n') || text.length === 0)
    fail('note text must be non-empty lines ending in a newline');
  const lines = [...keep.map(sigLine)];
  for (const s of signers) lines.push(sigLine({ name: s.name, keyHash: s.keyHash, signature: s.signNote(text) }));
  return `${text}\n${lines.join('')}`;
}

export function sigLine(s: NoteSignature): string {
  const blob = new Uint8Array(4 + s.signature.length);
  new DataView(blob.buffer).setUint32(0, s.keyHash);
  blob.set(s.signature, 4);
  return `${EM_DASH} ${s.name} ${Buffer.from(blob).toString('base64')}\n`;
}

/** Split a note into its text and signature lines, with the spec's bounds. */
export function parseNote(note: string): { text: string; signatures: NoteSignature[] } {
  if (note.length > 1_000_000) fail('note too large');
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) fail('malformed note: no blank line before signatures');
  const text = note.slice(0, split + 1);
  const sigs = note
    .slice(split + 2)
    .split('\n')
    .slice(0, -1);
  if (sigs.length === 0 || sigs.length > MAX_SIGNATURES) fail('a note has 1 to 100 signatures');
  const signatures = sigs.map((line) => {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (!m) fail('malformed signature line');
    const blob = new Uint8Array(Buffer.from(m[2]!, 'base64'));
    if (blob.length < 5) fail('signature too short');
    return { name: m[1]!, keyHash: new DataView(blob.buffer).getUint32(0), signature: blob.slice(4) };
  });
  return { text, signatures };
}

/**
 * Open a note with the verifiers the caller trusts: every signature by a known key must verify, at least one
 * must be present (all of them with `requireAll`), and the text is returned only then. Signatures by unknown
 * keys are ignored (other cosigners).
 */
export function openNote(
  note: string,
  verifiers: readonly VerifierKey[],
  opts: { requireAll?: boolean } = {},
): { text: string; verifiedBy: VerifierKey[] } {
  const { text, signatures } = parseNote(note);
  const verifiedBy: VerifierKey[] = [];
  for (const s of signatures) {
    const key = verifiers.find((v) => v.name === s.name && v.keyHash === s.keyHash);
    if (!key) continue;
    if (!verifyNoteSignature(key, text, s.signature)) fail(`signature by ${s.name} does not verify`);
    if (!verifiedBy.includes(key)) verifiedBy.push(key);
  }
  if (opts.requireAll) {
    const missing = verifiers.filter((v) => !verifiedBy.includes(v));
    if (missing.length > 0)
      fail(
        `no signature by ${missing.map((m) => `${m.name} (${m.type === SIG_COSIGNATURE_MLDSA44 ? 'ML-DSA-44' : 'Ed25519'})`).join(', ')}`,
      );
  }
  if (verifiedBy.length === 0) fail('no signature by a trusted key');
  return { text, verifiedBy };
}
