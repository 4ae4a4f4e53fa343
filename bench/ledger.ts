/**
 * The ledger (issue 4): append throughput (entries/s, batched) on SQLite and PostgreSQL; inclusion-proof time
 * at 1M entries; proof size; verify time.   npm run build && node dist/bench/ledger.js [--entries 10000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startWitness } from '../src/agents/witness/witness.js';
import { formatCheckpoint } from '../src/ledger/checkpoint.js';
import {
  MemoryHashes,
  consistencyProof,
  inclusionProof,
  leafHash,
  rootHash,
  verifyInclusion,
} from '../src/ledger/merkle.js';
import { ed25519Signer, signNote } from '../src/ledger/note.js';
import { mldsa44Cosigner } from '../src/ledger/note-mldsa.js';
import { formatAddCheckpoint } from '../src/ledger/witness.js';
import { openDatabase, type DatabaseConfig } from '../src/store/dialect.js';
import { LedgerStore } from '../src/store/ledger-store.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { startPostgres } from '../test/support/postgres.js';

const { values: args } = parseArgs({
  options: { entries: { type: 'string', default: '10000' }, batch: { type: 'string', default: '100' } },
});
const N = Number(args.entries);
const BATCH = Number(args.batch);

async function appendRate(cfg: DatabaseConfig): Promise<number> {
  const { db, dialect } = openDatabase(cfg);
  await migrateToLatest(db, dialect);
  const store = new LedgerStore(db, dialect);
  const entry = () => {
    const data = randomBytes(1024);
    return {
      data,
      leafHash: leafHash(data),
      kind: 'bench',
      subjectKeys: [`sha256:${randomBytes(32).toString('hex')}`],
    };
  };
  const t0 = performance.now();
  for (let i = 0; i < N; i += BATCH)
    await store.append(Array.from({ length: Math.min(BATCH, N - i) }, entry), Date.now());
  const s = (performance.now() - t0) / 1000;
  if ((await store.size()) !== N) throw new Error('lost entries');
  await db.destroy();
  return N / s;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-bench-ledger-'));
const pg = await startPostgres();
try {
  const sqlite = await appendRate({ dialect: 'sqlite', file: path.join(dir, 'l.db') });
  const postgres = await appendRate({ dialect: 'postgres', url: await pg.newDatabase('ledger') });

  const M = 1_000_000;
  const tree = new MemoryHashes();
  let t0 = performance.now();
  for (let i = 0; i < M; i++) tree.append(leafHash(Buffer.from(String(i))));
  const buildS = (performance.now() - t0) / 1000;
  const root = rootHash(tree, M);
  const samples = 2000;
  let proofMs = 0;
  let verifyMs = 0;
  let bytes = 0;
  for (let k = 0; k < samples; k++) {
    const i = Math.floor(Math.random() * M);
    t0 = performance.now();
    const p = inclusionProof(tree, i, M);
    proofMs += performance.now() - t0;
    bytes = Math.max(bytes, p.length * 32);
    t0 = performance.now();
    if (!verifyInclusion(leafHash(Buffer.from(String(i))), i, M, p, root)) throw new Error('proof failed');
    verifyMs += performance.now() - t0;
  }
  // Checkpoints: signing (Ed25519 alone, and with the ML-DSA-44 cosignature the server adds), and one witness
  // round trip over loopback HTTP (add-checkpoint with a consistency proof, both cosignatures, state fsynced).
  const origin = 'bench.lenix/ledger';
  const ed = ed25519Signer(origin, randomBytes(32));
  const ml = mldsa44Cosigner(origin, randomBytes(32), Date.now);
  const K = 200;
  const text = (n: number) => formatCheckpoint({ origin, size: n, root: rootHash(tree, n), extensions: [] });
  t0 = performance.now();
  for (let k = 0; k < K; k++) signNote(text(M), [ed]);
  const edMs = (performance.now() - t0) / K;
  t0 = performance.now();
  for (let k = 0; k < K; k++) signNote(text(M), [ed, ml]);
  const bothMs = (performance.now() - t0) / K;
  const witness = await startWitness({
    dir: path.join(dir, 'witness'),
    name: 'bench.lenix/witness',
    logKeys: [ed.verifierKey],
    pollMs: 0,
    host: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
  });
  let witnessMs = 0;
  const W = 50;
  for (let k = 0; k <= W; k++) {
    const size = M - W + k;
    const body = formatAddCheckpoint(
      k === 0 ? 0 : size - 1,
      k === 0 ? [] : consistencyProof(tree, size - 1, size),
      signNote(text(size), [ed, ml]),
    );
    const started = performance.now();
    const res = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body });
    if (res.status !== 200) throw new Error(`witness: ${res.status} ${await res.text()}`);
    await res.text();
    if (k > 0) witnessMs += performance.now() - started;
  }
  await witness.close();

  console.log(`\nLedger (${os.cpus().length} cores, Node ${process.version}); 1 KiB entries in batches of ${BATCH}\n`);
  console.log('| measure | value | target |');
  console.log('| --- | ---: | ---: |');
  console.log(`| append, SQLite (synchronous=FULL) | ${Math.round(sqlite)} entries/s | ≥ 10,000 |`);
  console.log(`| append, PostgreSQL | ${Math.round(postgres)} entries/s | ≥ 10,000 |`);
  console.log(`| inclusion proof at 1M entries | ${(proofMs / samples).toFixed(3)} ms | ≤ 1 ms |`);
  console.log(`| proof size at 1M entries | ${bytes} bytes | 32·⌈log2 n⌉ = ${32 * Math.ceil(Math.log2(M))} |`);
  console.log(`| verify one inclusion proof | ${(verifyMs / samples).toFixed(3)} ms | |`);
  console.log(`| load 1M leaf hashes into the in-memory tree | ${buildS.toFixed(2)} s | |`);
  console.log(`| sign a checkpoint, Ed25519 | ${edMs.toFixed(2)} ms | |`);
  console.log(
    `| sign a checkpoint, Ed25519 + ML-DSA-44 cosignature | ${bothMs.toFixed(2)} ms (${(bothMs / edMs).toFixed(1)}×) | |`,
  );
  console.log(
    `| witness add-checkpoint round trip (HTTP, proof check, 2 cosignatures, fsync) | ${(witnessMs / W).toFixed(2)} ms | |`,
  );
} finally {
  await pg.stop();
  await rm(dir, { recursive: true, force: true });
}
