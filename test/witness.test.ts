import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { startWitness } from '../src/agents/witness/witness.js';
import { formatCheckpoint } from '../src/ledger/checkpoint.js';
import { MemoryHashes, consistencyProof, leafHash, rootHash } from '../src/ledger/merkle.js';
import { ed25519Signer, openNote, parseVerifierKey, signNote } from '../src/ledger/note.js';
import { mldsa44Cosigner } from '../src/ledger/note-mldsa.js';
import { formatAddCheckpoint } from '../src/ledger/witness.js';

/**
 * The witness process over real HTTP (C2SP tlog-witness): it cosigns a growing log, keeps its state on disk
 * across a restart, and refuses a checkpoint for a rewritten history with 422 while its state stays put.
 */
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const ORIGIN = 'log.test/ledger';
const log = ed25519Signer(ORIGIN, new Uint8Array(32).fill(4));
const logPq = mldsa44Cosigner(ORIGIN, new Uint8Array(32).fill(5), Date.now);
const tree = (n: number, tag = 'e') =>
  new MemoryHashes(Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`${tag}${i}`))));
const checkpoint = (t: MemoryHashes) =>
  signNote(formatCheckpoint({ origin: ORIGIN, size: t.size, root: rootHash(t, t.size), extensions: [] }), [log, logPq]);

test('a witness cosigns consistent checkpoints, persists what it cosigned and refuses a fork', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-witness-'));
  dirs.push(dir);
  const opts = {
    dir,
    name: 'witness.test/w1',
    logKeys: [log.verifierKey],
    pollMs: 0,
    host: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
  };
  let w = await startWitness(opts);
  const keys = (await (await fetch(`${w.url}/key`)).text()).trim().split('\n');
  assert.equal(keys.length, 2);
  const post = (body: string) =>
    fetch(`${w.url}/add-checkpoint`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });

  const t5 = tree(5);
  const first = await post(formatAddCheckpoint(0, [], checkpoint(t5)));
  assert.equal(first.status, 200);
  const lines = await first.text();
  const text = formatCheckpoint({ origin: ORIGIN, size: 5, root: rootHash(t5, 5), extensions: [] });
  assert.equal(
    openNote(`${text}\n${lines}`, keys.map(parseVerifierKey), { requireAll: true }).verifiedBy.length,
    2,
    'an Ed25519 and an ML-DSA-44 cosignature',
  );

  const t9 = tree(9);
  assert.equal((await post(formatAddCheckpoint(5, consistencyProof(t9, 5, 9), checkpoint(t9)))).status, 200);

  // Restarted, the witness remembers size 9: an old size of 0 gets 409 and the size, as the spec says.
  await w.close();
  w = await startWitness(opts);
  const stale = await post(formatAddCheckpoint(0, [], checkpoint(tree(12))));
  assert.equal(stale.status, 409);
  assert.equal(stale.headers.get('content-type'), 'text/x.tlog.size');
  assert.equal(await stale.text(), '9\n');

  // A log that rewrote entry 3 presents a tree of 12 with a "consistency proof" from its own history.
  const forked = tree(12, 'f');
  const fork = await post(formatAddCheckpoint(9, consistencyProof(forked, 9, 12), checkpoint(forked)));
  assert.equal(fork.status, 422);
  assert.match(await fork.text(), /not consistent/);
  const state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as Record<string, { size: number }>;
  assert.equal(state[ORIGIN]!.size, 9, 'the refused checkpoint changed nothing');

  // Signed by a key the witness does not trust: 403; an unknown origin: 404; garbage: 400.
  const forger = ed25519Signer(ORIGIN, new Uint8Array(32).fill(6));
  const t12 = tree(12);
  const forgedNote = signNote(formatCheckpoint({ origin: ORIGIN, size: 12, root: rootHash(t12, 12), extensions: [] }), [
    forger,
  ]);
  assert.equal((await post(formatAddCheckpoint(9, consistencyProof(t12, 9, 12), forgedNote))).status, 403);
  const stranger = ed25519Signer('other.test/log', new Uint8Array(32).fill(7));
  assert.equal(
    (
      await post(
        formatAddCheckpoint(
          0,
          [],
          signNote(
            formatCheckpoint({ origin: 'other.test/log', size: 1, root: rootHash(tree(1), 1), extensions: [] }),
            [stranger],
          ),
        ),
      )
    ).status,
    404,
  );
  assert.equal((await post('hello')).status, 400);
  // The honest growth still works, and monitors can read what it cosigned.
  assert.equal((await post(formatAddCheckpoint(9, consistencyProof(t12, 9, 12), checkpoint(t12)))).status, 200);
  assert.match(await (await fetch(`${w.url}/checkpoint`)).text(), /^log\.test\/ledger\n12\n/);
  await w.close();
});
