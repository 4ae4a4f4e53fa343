import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { test } from 'node:test';
import { formatCheckpoint, parseCheckpoint } from './checkpoint.js';
import { EMPTY_ROOT } from './merkle.js';
import { ed25519Signer, ed25519Verify, openNote, parseSignerKey, parseVerifierKey, signNote } from './note.js';

// The example of the reference implementation (golang.org/x/mod/sumdb/note), used as data.
const VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE = `${TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

/**
 * An independent reading of C2SP signed-note, written from the spec text and sharing no code with note.ts:
 * split off the signature lines after the last blank line; for each line "— name base64", the first four
 * bytes are the key hash SHA-256(name || 0x0A || 0x01 || key)[:4] and the rest an Ed25519 signature over the
 * text (including its final newline).
 */
function specVerify(note: string, vkey: string): boolean {
  const [name, hashHex, keyB64] = [
    vkey.slice(0, vkey.indexOf('+')),
    vkey.split('+')[1]!,
    vkey.split('+').slice(2).join('+'),
  ];
  const keyBytes = Buffer.from(keyB64, 'base64');
  const idHash = createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`), keyBytes]))
    .digest()
    .subarray(0, 4);
  if (idHash.toString('hex') !== hashHex || keyBytes[0] !== 1) return false;
  const cut = note.lastIndexOf('\n\n');
  const text = note.slice(0, cut + 1);
  const pub = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), keyBytes.subarray(1)]),
    format: 'der',
    type: 'spki',
  });
  return note
    .slice(cut + 2)
    .split('\n')
    .filter(Boolean)
    .some((line) => {
      const [dash, who, b64] = line.split(' ');
      const blob = Buffer.from(b64 ?? '', 'base64');
      return (
        dash === '\u2014' &&
        who === name &&
        blob.subarray(0, 4).equals(idHash) &&
        verify(null, Buffer.from(text), pub, blob.subarray(4))
      );
    });
}

test('the reference example: key ids, keys and the signature are reproduced byte for byte', () => {
  const v = parseVerifierKey(VKEY);
  assert.equal(v.name, 'PeterNeumann');
  assert.equal(v.keyHash, 0xc74f20a3);
  const signer = parseSignerKey(SKEY);
  assert.equal(signer.verifierKey, VKEY);
  assert.equal(signNote(TEXT, [signer]), NOTE);
  assert.equal(openNote(NOTE, [v]).text, TEXT);
});

test('notes this code signs verify with an independent reading of the spec, and tampering is caught', () => {
  const s = ed25519Signer('log.lenix.example', new Uint8Array(32).fill(7));
  const note = signNote(formatCheckpoint({ origin: 'log.lenix.example', size: 8, root: EMPTY_ROOT, extensions: [] }), [
    s,
  ]);
  assert.ok(specVerify(note, s.verifierKey));
  assert.ok(specVerify(NOTE, VKEY));
  assert.ok(!specVerify(note.replace('\n8\n', '\n9\n'), s.verifierKey));
  assert.throws(() => openNote(note.replace('\n8\n', '\n9\n'), [parseVerifierKey(s.verifierKey)]), {
    code: 'SIGNATURE_INVALID',
  });
  const other = ed25519Signer('log.lenix.example', new Uint8Array(32).fill(8));
  assert.throws(
    () => openNote(note, [parseVerifierKey(other.verifierKey)]),
    { code: 'SIGNATURE_INVALID' },
    'a note signed by another key',
  );
});

test('a key checked once does not vouch for another: key objects are kept by the key bytes', () => {
  const a = ed25519Signer('lenix.local/ledger', new Uint8Array(32).fill(1));
  const b = ed25519Signer('lenix.local/ledger', new Uint8Array(32).fill(2));
  const message = new TextEncoder().encode('checkpoint\n');
  const byA = a.sign(message);
  const keyA = parseVerifierKey(a.verifierKey);
  const keyB = parseVerifierKey(b.verifierKey);
  for (let round = 0; round < 2; round++) {
    assert.equal(ed25519Verify(keyA, message, byA), true, `round ${round}: A's signature, A's key`);
    assert.equal(ed25519Verify(keyB, message, byA), false, `round ${round}: A's signature, B's key`);
  }
  // The same bytes in a buffer whose contents then change: the check follows the bytes, not the buffer.
  const mutable = { ...keyA, publicKey: new Uint8Array(keyA.publicKey) };
  assert.equal(ed25519Verify(mutable, message, byA), true);
  mutable.publicKey.set(keyB.publicKey);
  assert.equal(ed25519Verify(mutable, message, byA), false);
});

test('malformed keys and notes fail closed', () => {
  for (const bad of [
    'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3',
    'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    VKEY.slice(0, -2),
  ]) {
    assert.throws(() => parseVerifierKey(bad), { code: 'SIGNATURE_INVALID' }, bad);
  }
  assert.throws(() => openNote(TEXT, [parseVerifierKey(VKEY)]), { code: 'SIGNATURE_INVALID' });
  assert.throws(() => openNote(NOTE.replace('x08go', 'y08go'), [parseVerifierKey(VKEY)]), {
    code: 'SIGNATURE_INVALID',
  });
});

test('checkpoints round-trip and reject malformed bodies', () => {
  const c = { origin: 'lenix.example/log', size: 42, root: EMPTY_ROOT, extensions: ['ext one'] };
  const text = formatCheckpoint(c);
  assert.equal(text, `lenix.example/log\n42\n${Buffer.from(EMPTY_ROOT).toString('base64')}\next one\n`);
  assert.deepEqual(parseCheckpoint(text), c);
  for (const bad of [
    'x\n01\nAAAA\n',
    'x\n1\nnotbase64\n',
    'x\n1\n',
    `x\n-1\n${Buffer.from(EMPTY_ROOT).toString('base64')}\n`,
  ]) {
    assert.throws(() => parseCheckpoint(bad), { code: 'SIGNATURE_INVALID' }, bad);
  }
});

/**
 * C2SP tlog-cosignature, read independently from the spec text (no code shared with note.ts or
 * cosignature.ts): the key ID is SHA-256(name || "\n" || type || public key)[:4]; the signature is a u64
 * big-endian timestamp followed by the signature. Ed25519 (0x04) signs "cosignature/v1\n", "time <ts>\n" and
 * the checkpoint body; ML-DSA-44 (0x06) signs the cosigned_message structure with the label "subtree/v1\n\0",
 * 1-byte length-prefixed cosigner name and origin, the u64 timestamp, start 0, end = tree size, and the root.
 */
async function specCosignatureVerify(
  note: string,
  name: string,
  type: 4 | 6,
  pub: Uint8Array,
): Promise<{ timestamp: bigint } | null> {
  const { ml_dsa44 } = await import('@noble/post-quantum/ml-dsa.js');
  const id = createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.from([type]), Buffer.from(pub)]))
    .digest()
    .subarray(0, 4);
  const cut = note.lastIndexOf('\n\n');
  const body = note.slice(0, cut + 1);
  const [origin, size, root] = body.split('\n');
  for (const line of note
    .slice(cut + 2)
    .split('\n')
    .filter(Boolean)) {
    const [dash, who, b64] = line.split(' ');
    const blob = Buffer.from(b64 ?? '', 'base64');
    if (dash !== '\u2014' || who !== name || !blob.subarray(0, 4).equals(id)) continue;
    const ts = blob.readBigUInt64BE(4);
    const sig = blob.subarray(12);
    if (type === 4) {
      const key = createPublicKey({
        key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(pub)]),
        format: 'der',
        type: 'spki',
      });
      if (sig.length === 64 && verify(null, Buffer.from(`cosignature/v1\ntime ${ts}\n${body}`), key, sig))
        return { timestamp: ts };
    } else {
      const u64 = (n: bigint) => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(n);
        return b;
      };
      const msg = Buffer.concat([
        Buffer.from('subtree/v1\n\0', 'latin1'),
        Buffer.from([Buffer.byteLength(name)]),
        Buffer.from(name),
        u64(ts),
        Buffer.from([Buffer.byteLength(origin!)]),
        Buffer.from(origin!),
        u64(0n),
        u64(BigInt(size!)),
        Buffer.from(root!, 'base64'),
      ]);
      if (sig.length === 2420 && ml_dsa44.verify(sig, msg, pub)) return { timestamp: ts };
    }
  }
  return null;
}

test('checkpoint cosignatures (Ed25519 0x04, ML-DSA-44 0x06) follow C2SP tlog-cosignature, checked by an independent reading', async () => {
  const { ed25519Cosigner, SIG_COSIGNATURE_MLDSA44 } = await import('./note.js');
  const { mldsa44Cosigner } = await import('./note-mldsa.js');
  const now = () => 1_700_000_000_123;
  const log = ed25519Signer('log.lenix.example', new Uint8Array(32).fill(7));
  const ml = mldsa44Cosigner('log.lenix.example', new Uint8Array(32).fill(1), now);
  const w = ed25519Cosigner('witness.example/w1', new Uint8Array(32).fill(2), now);
  const text = formatCheckpoint({ origin: 'log.lenix.example', size: 20852163, root: EMPTY_ROOT, extensions: [] });
  const note = signNote(text, [log, ml, w]);
  assert.deepEqual(await specCosignatureVerify(note, 'witness.example/w1', 4, w.publicKey), {
    timestamp: 1_700_000_000n,
  });
  assert.deepEqual(await specCosignatureVerify(note, 'log.lenix.example', 6, ml.publicKey), {
    timestamp: 1_700_000_000n,
  });
  // Our verifier agrees, requires every pinned key with requireAll, and ignores keys it was not given.
  const keys = [log.verifierKey, ml.verifierKey, w.verifierKey].map(parseVerifierKey);
  assert.equal(keys[1]!.type, SIG_COSIGNATURE_MLDSA44);
  assert.equal(keys[1]!.publicKey.length, 1312);
  assert.equal(openNote(note, keys, { requireAll: true }).verifiedBy.length, 3);
  assert.throws(
    () => openNote(signNote(text, [log]), keys, { requireAll: true }),
    /no signature by log.lenix.example \(ML-DSA-44\), witness.example\/w1/,
  );
  // A cosignature does not carry over to another tree size or root.
  const moved = note.replace('\n20852163\n', '\n20852164\n');
  assert.equal(await specCosignatureVerify(moved, 'log.lenix.example', 6, ml.publicKey), null);
  assert.throws(() => openNote(moved, [keys[1]!]), /does not verify/);
  assert.throws(() => openNote(moved, [keys[2]!]), /does not verify/);
});
