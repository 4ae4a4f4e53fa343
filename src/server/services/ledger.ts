import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { signEnvelope, type Envelope } from '../../attest/dsse.js';
import type { Stage, Statement } from '../../attest/statements.js';
import type { ProofBundle } from '../../attest/verify-chain.js';
import { LenixError } from '../../core/errors.js';
import { formatCheckpoint } from '../../ledger/checkpoint.js';
import { MemoryHashes, consistencyProof, inclusionProof, leafHash, rootHash } from '../../ledger/merkle.js';
import { ed25519Signer, signNote } from '../../ledger/note.js';
import { MAX_ENTRY_SIZE, TILE_HEIGHT, TILE_WIDTH, encodeEntryBundle, encodeHashTile, tileWidth, type TileRef } from '../../ledger/tiles.js';
import { LedgerStore } from '../../store/ledger-store.js';
import { mldsaKeys, mldsaSign } from '../../crypto/mldsa.js';
import { mldsaKeyId } from '../../attest/dsse.js';
import type { ServerDeps } from '../context.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The transparency ledger: an append-only Merkle log of DSSE-signed statements, one per stage, published as
 * C2SP tlog-tiles with signed checkpoints. The log key (Ed25519) lives in DATA/ledger/ (mode 0600) and never
 * leaves the server; its verifier key string is what clients pin.
 */
export class LedgerService {
  private tree = new MemoryHashes();
  private signer!: ReturnType<typeof ed25519Signer>;
  private pq!: { keyid: string; publicKey: Uint8Array; secretKey: Uint8Array };
  private pending: NodeJS.Timeout | null = null;
  readonly store: LedgerStore;

  constructor(
    private readonly deps: ServerDeps,
    readonly origin: string,
    private readonly batchMs = 1000,
  ) {
    this.store = new LedgerStore(deps.store.db, deps.store.dialect);
  }

  async init(): Promise<void> {
    const dir = path.join(this.deps.config.dataDir, 'ledger');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'log.key');
    let seed: Buffer;
    try {
      seed = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    } catch {
      seed = randomBytes(32);
      await writeFile(file, `${seed.toString('base64')}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
    }
    this.signer = ed25519Signer(this.origin, seed);
    // The post-quantum key (ML-DSA-65, FIPS 204) signs every statement next to Ed25519.
    const pqFile = path.join(dir, 'mldsa65.seed');
    let pqSeed: Buffer;
    try {
      pqSeed = Buffer.from((await readFile(pqFile, 'utf8')).trim(), 'base64');
    } catch {
      pqSeed = randomBytes(32);
      await writeFile(pqFile, `${pqSeed.toString('base64')}\n`, { mode: 0o600 });
      await chmod(pqFile, 0o600);
    }
    const keys = mldsaKeys(65, pqSeed);
    this.pq = { keyid: mldsaKeyId(keys.publicKey), ...keys };
    await this.sync();
  }

  /** The verifier key clients pin: `name+hash+base64(0x01 ‖ key)`. */
  get verifierKey(): string {
    return this.signer.verifierKey;
  }

  /** The ML-DSA-65 public key (raw, FIPS 204 encoding), served at /ledger/mldsa65.pub as base64. */
  get pqPublicKey(): Uint8Array {
    return this.pq.publicKey;
  }

  /** Catch up with entries another replica appended. */
  private async sync(): Promise<void> {
    if ((await this.store.size()) === this.tree.size) return;
    for (const h of await this.store.leafHashes(this.tree.size)) this.tree.append(h);
  }

  /** Sign a statement (DSSE, Ed25519 with the log key) and append it; returns its entry index. */
  async record(stage: Stage, statement: Statement, keys: readonly string[]): Promise<number> {
    const envelope = signEnvelope(statement, [
      { keyid: this.signer.verifierKey, sign: (m) => this.signer.sign(m) },
      { keyid: this.pq.keyid, sign: (m) => mldsaSign(65, this.pq.secretKey, m) },
    ]);
    const data = new TextEncoder().encode(JSON.stringify(envelope));
    if (data.length > MAX_ENTRY_SIZE) throw new LenixError('BAD_REQUEST', `a ${stage} statement of ${data.length} bytes exceeds the 64 KiB entry limit`);
    const index = await this.store.append([{ data, leafHash: leafHash(data), kind: stage, subjectKeys: keys }], this.deps.clock.now());
    await this.sync();
    this.schedule();
    this.deps.log.info({ component: 'ledger', stage, index }, 'statement logged');
    return index;
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      void this.checkpoint().catch((err: unknown) => this.deps.log.error({ component: 'ledger', err }, 'checkpoint failed'));
    }, this.batchMs);
    this.pending.unref();
  }

  /** The latest checkpoint, signing a new one first if entries arrived since (batching: at most every batchMs). */
  async checkpoint(): Promise<{ size: number; note: string }> {
    await this.sync();
    const latest = await this.store.latestCheckpoint();
    if (latest && latest.size === this.tree.size) return latest;
    const size = this.tree.size;
    const note = signNote(formatCheckpoint({ origin: this.origin, size, root: rootHash(this.tree, size), extensions: [] }), [this.signer]);
    await this.store.saveCheckpoint(size, note, this.deps.clock.now());
    return { size, note };
  }

  inclusion(index: number, size: number): Uint8Array[] {
    return inclusionProof(this.tree, index, size);
  }

  consistency(m: number, n: number): Uint8Array[] {
    if (n > this.tree.size) throw new LenixError('NOT_FOUND', `the log has ${this.tree.size} entries`);
    return consistencyProof(this.tree, m, n);
  }

  /** A tile's bytes, or null when it does not exist at the current size. */
  async tile(t: TileRef): Promise<Uint8Array | null> {
    await this.sync();
    const size = this.tree.size;
    const available = tileWidth(size, t.level, t.index);
    if (available < t.width) return null; // a partial tile stays servable after the tile fills: it is a prefix
    const start = t.index * TILE_WIDTH;
    if (t.level === 'entries') {
      const rows = await this.store.entries(start, t.width);
      return encodeEntryBundle(rows.map((r) => r.data));
    }
    const level = t.level * TILE_HEIGHT;
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < t.width; i++) hashes.push(this.tree.subtree(level, start + i));
    return encodeHashTile(hashes);
  }

  /** Entries (with their statements) whose subjects match a key: sha256:<hex>, build:<id>, commit:<sha>. */
  async find(key: string): Promise<{ index: number; stage: string; envelope: Envelope }[]> {
    const out = [];
    for (const idx of await this.store.lookup(key)) {
      const [e] = await this.store.entries(idx, 1);
      if (e) out.push({ index: e.index, stage: e.kind, envelope: JSON.parse(new TextDecoder().decode(e.data)) as Envelope });
    }
    return out;
  }

  async entry(index: number): Promise<Uint8Array | null> {
    const [e] = await this.store.entries(index, 1);
    return e?.data ?? null;
  }

  get size(): number {
    return this.tree.size;
  }

  /** An offline proof bundle: every entry that names one of `keys`, followed along the chain, with proofs. */
  async bundle(keys: readonly string[]): Promise<ProofBundle & { logKey: string }> {
    const cp = await this.checkpoint();
    const seen = new Map<number, { index: number; entry: string; proof: string[] }>();
    const queue = [...keys];
    const visited = new Set<string>();
    while (queue.length > 0) {
      const key = queue.shift()!;
      if (visited.has(key)) continue;
      visited.add(key);
      for (const e of await this.find(key)) {
        if (e.index >= cp.size || seen.has(e.index)) continue;
        const data = await this.entry(e.index);
        seen.set(e.index, { index: e.index, entry: Buffer.from(data!).toString('base64'), proof: this.inclusion(e.index, cp.size).map(hex) });
        // Follow the chain: a statement names its build, and sign statements their unsigned packages.
        const st = JSON.parse(Buffer.from(e.envelope.payload, 'base64').toString('utf8')) as { predicate: Record<string, unknown> };
        const buildId = (st.predicate['buildId'] ?? (st.predicate['buildDefinition'] as { internalParameters?: { buildId?: number } } | undefined)?.internalParameters?.buildId) as number | undefined;
        if (buildId !== undefined) queue.push(`build:${buildId}`);
        for (const p of (st.predicate['packages'] ?? []) as { unsigned?: { sha256: string } }[]) if (p.unsigned) queue.push(`sha256:${p.unsigned.sha256}`);
      }
    }
    return { checkpoint: cp.note, logKey: this.verifierKey, entries: [...seen.values()].sort((a, b) => a.index - b.index) };
  }
}
