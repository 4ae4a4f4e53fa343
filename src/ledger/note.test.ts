import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { test } from 'node:test';
import { formatCheckpoint, parseCheckpoint } from './checkpoint.js';
import { EMPTY_ROOT } from './merkle.js';
import { ed25519Signer, openNote, parseSignerKey, parseVerifierKey, signNote } from './note.js';

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
  const [name, hashHex, keyB64] = [vkey.slice(0, vkey.indexOf('+')), vkey.split('+')[1]!, vkey.split('+').slice(2).join('+')];
  const keyBytes = Buffer.from(keyB64, 'base64');
  const idHash = createHash('sha256').update(Buffer.concat([Buffer.from(`${name}\n`), keyBytes])).digest().subarray(0, 4);
  if (idHash.toString('hex') !== hashHex || keyBytes[0] !== 1) return false;
  const cut = note.lastIndexOf('\n\n');
  const text = note.slice(0, cut + 1);
  const pub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), keyBytes.subarray(1)]), format: 'der', type: 'spki' });
  return note
    .slice(cut + 2)
    .split('\n')
    .filter(Boolean)
    .some((line) => {
      const [dash, who, b64] = line.split(' ');
      const blob = Buffer.from(b64 ?? '', 'base64');
      return dash === '\u2014' && who === name && blob.subarray(0, 4).equals(idHash) && verify(null, Buffer.from(text), pub, blob.subarray(4));
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
  const note = signNote(formatCheckpoint({ origin: 'log.lenix.example', size: 8, root: EMPTY_ROOT, extensions: [] }), [s]);
  assert.ok(specVerify(note, s.verifierKey));
  assert.ok(specVerify(NOTE, VKEY));
  assert.ok(!specVerify(note.replace('\n8\n', '\n9\n'), s.verifierKey));
  assert.throws(() => openNote(note.replace('\n8\n', '\n9\n'), [parseVerifierKey(s.verifierKey)]), { code: 'SIGNATURE_INVALID' });
  const other = ed25519Signer('log.lenix.example', new Uint8Array(32).fill(8));
  assert.throws(() => openNote(note, [parseVerifierKey(other.verifierKey)]), { code: 'SIGNATURE_INVALID' }, 'a note signed by another key');
});

test('malformed keys and notes fail closed', () => {
  for (const bad of ['PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', 'PeterNeumann+c74f20a3', 'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', VKEY.slice(0, -2)]) {
    assert.throws(() => parseVerifierKey(bad), { code: 'SIGNATURE_INVALID' }, bad);
  }
  assert.throws(() => openNote(TEXT, [parseVerifierKey(VKEY)]), { code: 'SIGNATURE_INVALID' });
  assert.throws(() => openNote(NOTE.replace('x08go', 'y08go'), [parseVerifierKey(VKEY)]), { code: 'SIGNATURE_INVALID' });
});

test('checkpoints round-trip and reject malformed bodies', () => {
  const c = { origin: 'lenix.example/log', size: 42, root: EMPTY_ROOT, extensions: ['ext one'] };
  const text = formatCheckpoint(c);
  assert.equal(text, `lenix.example/log\n42\n${Buffer.from(EMPTY_ROOT).toString('base64')}\next one\n`);
  assert.deepEqual(parseCheckpoint(text), c);
  for (const bad of ['x\n01\nAAAA\n', 'x\n1\nnotbase64\n', 'x\n1\n', `x\n-1\n${Buffer.from(EMPTY_ROOT).toString('base64')}\n`]) {
    assert.throws(() => parseCheckpoint(bad), { code: 'SIGNATURE_INVALID' }, bad);
  }
});
