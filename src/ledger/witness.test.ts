import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCheckpoint } from './checkpoint.js';
import { MemoryHashes, consistencyProof, leafHash, rootHash } from './merkle.js';
import { ed25519Signer, parseVerifierKey, signNote } from './note.js';
import { decide, formatAddCheckpoint, parseAddCheckpoint, type WitnessState } from './witness.js';

const log = ed25519Signer('log.example/a', new Uint8Array(32).fill(1));
const logs = new Map([['log.example/a', [parseVerifierKey(log.verifierKey)]]]);
const tree = (n: number, tag = 'x') =>
  new MemoryHashes(Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`${tag}${i}`))));
const checkpoint = (t: MemoryHashes, size = t.size, signer = log, origin = 'log.example/a') =>
  signNote(formatCheckpoint({ origin, size, root: rootHash(t, size), extensions: [] }), [signer]);
const req = (old: number, t: MemoryHashes, note: string) =>
  parseAddCheckpoint(formatAddCheckpoint(old, old === 0 ? [] : consistencyProof(t, old, t.size), note));

test('the add-checkpoint body round-trips and bad bodies are refused', () => {
  const t = tree(9);
  const r = req(4, t, checkpoint(t));
  assert.equal(r.oldSize, 4);
  assert.equal(r.proof.length, consistencyProof(t, 4, 9).length);
  for (const bad of ['old 1\n', 'new 1\n\nx', 'old 01\n\nx', `old 1\n${'AAAA\n'}\nx`])
    assert.throws(() => parseAddCheckpoint(bad), { code: 'BAD_REQUEST' }, bad);
});

test('a witness cosigns consistent checkpoints and refuses forks, unknown logs and bad signatures', () => {
  const t = tree(10);
  let state: WitnessState | null = null;
  const at = () => state;
  // First sight: old size 0, no proof.
  const first = decide(req(0, tree(4), checkpoint(tree(4))), logs, at);
  assert.ok(first.ok);
  state = { size: 4, root: rootHash(t, 4) };
  // Growth with a valid consistency proof.
  assert.ok(decide(req(4, t, checkpoint(t)), logs, at).ok);
  // The old size must be the one last cosigned.
  const stale = decide(req(3, t, checkpoint(t)), logs, at);
  assert.equal(!stale.ok && stale.status, 409);
  assert.equal(!stale.ok && stale.size, 4);
  // A rewritten history (same size 4 prefix differs): the proof cannot verify.
  const forked = tree(10, 'y');
  const fork = decide(req(4, forked, checkpoint(forked)), logs, at);
  assert.equal(!fork.ok && fork.status, 422);
  // The same size with another root.
  const same = decide(req(4, tree(4, 'y'), checkpoint(tree(4, 'y'))), logs, at);
  assert.equal(!same.ok && same.status, 409);
  assert.match(!same.ok ? same.reason : '', /fork/);
  // Unknown origin, another key, old size above the checkpoint.
  const other = ed25519Signer('log.example/b', new Uint8Array(32).fill(2));
  assert.equal(
    (decide(req(0, t, checkpoint(t, t.size, other, 'log.example/b')), logs, at) as { status: number }).status,
    404,
  );
  const forger = ed25519Signer('log.example/a', new Uint8Array(32).fill(3));
  assert.equal((decide(req(4, t, checkpoint(t, t.size, forger)), logs, at) as { status: number }).status, 403);
  assert.equal((decide({ oldSize: 11, proof: [], note: checkpoint(t) }, logs, at) as { status: number }).status, 400);
});
