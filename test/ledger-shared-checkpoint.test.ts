import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { startWitness } from '../src/agents/witness/witness.js';
import { leafHash } from '../src/ledger/merkle.js';
import { openNote, parseVerifierKey } from '../src/ledger/note.js';
import { startServer } from '../src/server/main.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const log = pino({ level: 'silent' });

/**
 * Issue 16: servers sharing one log may sign a checkpoint of the same size at the same time; the first note
 * stored stays (every server serves the same checkpoint). A witness cosignature only the later server got is
 * added to the stored note, never dropped. The witness is reached through a gate that holds its answer until
 * the other server has stored its note, so the race happens every run.
 */
test('two servers sign the same checkpoint: the stored note keeps and gains the cosignature the other got', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-shared-cp-'));
  dirs.push(dir);
  const database = path.join(dir, 'lenix.db');
  const ledgerKeysDir = path.join(dir, 'ledger-keys');
  const a = await startServer({ dataDir: path.join(dir, 'a'), database, port: 0, log, config: { ledgerKeysDir } });
  const witness = await startWitness({
    dir: path.join(dir, 'witness'),
    name: 'witness.test/w1',
    logKeys: [a.services.ledger.verifierKey],
    pollMs: 0,
    host: '127.0.0.1',
    port: 0,
    log,
  });
  // The gate: forwards to the witness, holding add-checkpoint answers until `open`.
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let arrived!: () => void;
  const held = new Promise<void>((resolve) => (arrived = resolve));
  const gate = http.createServer(async (req, res) => {
    const body: Buffer[] = [];
    for await (const chunk of req) body.push(chunk as Buffer);
    if (req.url === '/add-checkpoint') {
      arrived();
      await opened;
    }
    const r = await fetch(`${witness.url}${req.url}`, {
      method: req.method ?? 'GET',
      ...(req.method === 'POST' ? { body: Buffer.concat(body), headers: { 'content-type': 'text/plain' } } : {}),
    });
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
    res.end(Buffer.from(await r.arrayBuffer()));
  });
  await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
  const gateUrl = `http://127.0.0.1:${(gate.address() as { port: number }).port}`;
  const b = await startServer({
    dataDir: path.join(dir, 'b'),
    database,
    port: 0,
    log,
    config: { ledgerKeysDir, witnesses: [gateUrl] },
  });
  try {
    const data = new TextEncoder().encode('{"an":"entry"}');
    await a.services.ledger.store.append(
      [{ data, leafHash: leafHash(data), kind: 'test', subjectKeys: [] }],
      Date.now(),
    );

    const fromB = b.services.ledger.checkpoint(); // signs, then waits at the gate for the witness
    await held;
    const fromA = await a.services.ledger.checkpoint(); // a has no witness: stores its note first
    open();
    const merged = await fromB;

    assert.equal(merged.size, fromA.size);
    assert.ok(merged.note.startsWith(fromA.note), "the first note stored stays, the witness's lines added to it");
    assert.notEqual(merged.note, fromA.note);
    const witnessKeys = (await (await fetch(`${witness.url}/key`)).text()).trim().split('\n').map(parseVerifierKey);
    assert.equal(openNote(merged.note, witnessKeys, { requireAll: true }).verifiedBy.length, 2, 'both cosignatures');
    assert.equal(openNote(merged.note, [parseVerifierKey(a.services.ledger.verifierKey)]).verifiedBy.length, 1);
    assert.equal((await a.services.ledger.checkpoint()).note, merged.note, 'every server serves the merged note');
  } finally {
    open();
    await b.close();
    await a.close();
    await witness.close();
    gate.close();
  }
});
