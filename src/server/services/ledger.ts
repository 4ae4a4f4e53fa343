import { primaryOnly } from '../../store/read-routing.js';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { peekStatement, signEnvelope } from '../../attest/dsse.js';
import { manifestProofs, parseManifest, type Manifest, type ManifestProof } from '../../attest/manifest.js';
import { RPM_HEADER_DIGEST, type Stage, type Statement, type Subject } from '../../attest/statements.js';
import { HEADER_KEY_PREFIX, headerKey } from '../../core/header-digests.js';
import type { ProofBundle } from '../../attest/verify-chain.js';
import { LenixError } from '../../core/errors.js';
import { parseSha256 } from '../../core/ids.js';
import { formatCheckpoint } from '../../ledger/checkpoint.js';
import { MemoryHashes, consistencyProof, inclusionProof, leafHash, rootHash } from '../../ledger/merkle.js';
import {
  ed25519Signer,
  openNote,
  parseNote,
  parseVerifierKey,
  sigLine,
  signNote,
  type VerifierKey,
} from '../../ledger/note.js';
import { mldsa44Cosigner } from '../../ledger/note-mldsa.js';
import { formatAddCheckpoint } from '../../ledger/witness.js';
import {
  MAX_ENTRY_SIZE,
  TILE_HEIGHT,
  TILE_WIDTH,
  encodeEntryBundle,
  encodeHashTile,
  tileWidth,
  type TileRef,
} from '../../ledger/tiles.js';
import { readOrCreateSeed } from '../../store/durable.js';
import { LedgerStore } from '../../store/ledger-store.js';
import { mldsaKeys, mldsaSign } from '../../crypto/mldsa.js';
import { mldsaKeyId } from '../../attest/dsse.js';
import type { DepsOf } from '../context.js';

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
  private pqCheckpoint!: ReturnType<typeof mldsa44Cosigner>;
  private pending: NodeJS.Timeout | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private signing: Promise<{ size: number; note: string }> | null = null;
  /** The size each witness last cosigned, as far as this process knows (a 409 answer corrects it). */
  private readonly witnessSizes = new Map<string, number>();
  /** Each witness's verifier keys, read from its /key once (read again after a failure). */
  private readonly witnessKeys = new Map<string, VerifierKey[]>();
  readonly store: LedgerStore;

  constructor(
    private readonly deps: DepsOf<'blobs' | 'clock' | 'config' | 'log', 'db' | 'dialect'>,
    readonly origin: string,
    private readonly batchMs = 1000,
  ) {
    // The tree in memory follows the primary: a replica behind it would look like entries lost to a failover.
    this.store = primaryOnly(new LedgerStore(deps.store.db, deps.store.dialect));
  }

  async init(): Promise<void> {
    // Servers sharing one log share its keys (lenix server --ledger-keys DIR; docs/operations.md).
    const dir = this.deps.config.ledgerKeysDir ?? path.join(this.deps.config.dataDir, 'ledger');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    this.signer = ed25519Signer(this.origin, await readOrCreateSeed(path.join(dir, 'log.key')));
    // Post-quantum keys (ML-DSA, FIPS 204): ML-DSA-65 signs every statement next to Ed25519; ML-DSA-44 signs
    // every checkpoint as a C2SP tlog-cosignature (type 0x06), as C2SP tlog-checkpoint recommends.
    const keys = mldsaKeys(65, await readOrCreateSeed(path.join(dir, 'mldsa65.seed')));
    this.pq = { keyid: mldsaKeyId(keys.publicKey), ...keys };
    this.pqCheckpoint = mldsa44Cosigner(this.origin, await readOrCreateSeed(path.join(dir, 'mldsa44.seed')), () =>
      this.deps.clock.now(),
    );
    await this.sync();
  }

  /** The verifier key clients pin: `name+hash+base64(0x01 ‖ key)`. */
  get verifierKey(): string {
    return this.signer.verifierKey;
  }

  /** The log's ML-DSA-44 checkpoint key: `name+hash+base64(0x06 ‖ key)`. */
  get pqVerifierKey(): string {
    return this.pqCheckpoint.verifierKey;
  }

  /** The ML-DSA-65 public key (raw, FIPS 204 encoding), served at /ledger/mldsa65.pub as base64. */
  get pqPublicKey(): Uint8Array {
    return this.pq.publicKey;
  }

  /**
   * Catch up with entries another server appended — after checking that the tree this process holds is still
   * the database's. After a failover the promoted database may lack the last entries this server saw (visible
   * on the old primary before they were replicated) and hold others at their indexes: the log is a sequence,
   * so comparing the last leaf this process has finds that, and the tree is read again rather than signed
   * into a checkpoint of a history the database does not have.
   */
  private sync(): Promise<void> {
    // One at a time: two overlapping catch-ups (a statement recorded while a checkpoint is signed) would both
    // append the same leaves to the tree and sign the root of a log that does not exist.
    const next = this.syncing.then(() => this.catchUp());
    this.syncing = next.catch(() => undefined);
    return next;
  }

  private async catchUp(): Promise<void> {
    const size = await this.store.size();
    if (this.tree.size > 0) {
      const last = this.tree.size - 1;
      const [leaf] = size > last ? await this.store.leafHashes(last, 1) : [];
      if (!leaf || Buffer.compare(Buffer.from(leaf), Buffer.from(this.tree.subtree(0, last))) !== 0) {
        this.deps.log.warn(
          { component: 'ledger', held: this.tree.size, database: size },
          'the database does not hold the entries this server saw (a failover): reading the log again',
        );
        this.tree = new MemoryHashes(await this.store.leafHashes(0));
        return;
      }
    }
    if (size === this.tree.size) return;
    for (const h of await this.store.leafHashes(this.tree.size)) this.tree.append(h);
  }

  /** Sign a statement (DSSE, Ed25519 with the log key) and append it; returns its entry index. */
  async record(stage: Stage, statement: Statement, keys: readonly string[]): Promise<number> {
    const envelope = signEnvelope(statement, [
      { keyid: this.signer.verifierKey, sign: (m) => this.signer.sign(m) },
      { keyid: this.pq.keyid, sign: (m) => mldsaSign(65, this.pq.secretKey, m) },
    ]);
    const data = new TextEncoder().encode(JSON.stringify(envelope));
    if (data.length > MAX_ENTRY_SIZE)
      throw new LenixError(
        'BAD_REQUEST',
        `a ${stage} statement of ${data.length} bytes exceeds the 64 KiB entry limit`,
      );
    const index = await this.store.append(
      [{ data, leafHash: leafHash(data), kind: stage, subjectKeys: keys }],
      this.deps.clock.now(),
    );
    await this.sync();
    this.schedule();
    this.deps.log.info({ component: 'ledger', stage, index }, 'statement logged');
    return index;
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      void this.checkpoint().catch((err: unknown) =>
        this.deps.log.error({ component: 'ledger', err }, 'checkpoint failed'),
      );
    }, this.batchMs);
    this.pending.unref();
  }

  /**
   * The latest checkpoint, signing a new one first if entries arrived since (batching: at most every
   * batchMs). One signing at a time; the configured witnesses are asked to cosign before it is stored.
   */
  async checkpoint(): Promise<{ size: number; note: string }> {
    await this.sync();
    const latest = await this.store.latestCheckpoint();
    if (latest && latest.size === this.tree.size) return latest;
    if (!this.signing) this.signing = this.signCheckpoint().finally(() => (this.signing = null));
    return this.signing;
  }

  private async signCheckpoint(): Promise<{ size: number; note: string }> {
    const size = this.tree.size;
    const text = formatCheckpoint({ origin: this.origin, size, root: rootHash(this.tree, size), extensions: [] });
    const signed = signNote(text, [this.signer, this.pqCheckpoint]);
    const witnesses = [...new Set([...this.deps.config.witnesses, ...(await this.store.witnesses())])];
    const cosignatures = (await Promise.all(witnesses.map((w) => this.cosign(w, text, signed, size)))).join('');
    let note = await this.store.saveCheckpoint(size, signed + cosignatures, this.deps.clock.now());
    // Servers sharing the log may sign the same size at once; the first note stored stays. Add to it the
    // witness cosignatures this server got and it lacks, so no witness's word is dropped.
    for (let attempt = 0; attempt < 5 && note !== signed + cosignatures; attempt++) {
      const have = parseNote(note).signatures;
      const missing = cosignatures
        .split('\n')
        .filter(Boolean)
        .filter((line) => {
          const sg = parseNote(`${text}\n${line}\n`).signatures[0];
          return sg && !have.some((h) => h.name === sg.name && h.keyHash === sg.keyHash);
        });
      if (missing.length === 0) break;
      const merged = `${note}${missing.map((l) => `${l}\n`).join('')}`;
      note = (await this.store.replaceCheckpointNote(size, note, merged))
        ? merged
        : await this.store.checkpointNote(size);
    }
    return { size, note };
  }

  /** C2SP tlog-witness add-checkpoint: the witness's cosignature lines, or '' if it refuses or is away. */
  private async cosign(witnessUrl: string, text: string, note: string, size: number): Promise<string> {
    const base = witnessUrl.replace(/\/+$/, '');
    const log = this.deps.log.child({ component: 'ledger', witness: base });
    try {
      let keys = this.witnessKeys.get(base);
      if (!keys) {
        keys = (await (await fetch(`${base}/key`, { signal: AbortSignal.timeout(5000) })).text())
          .split('\n')
          .filter(Boolean)
          .map(parseVerifierKey);
        this.witnessKeys.set(base, keys);
      }
      let old = this.witnessSizes.get(base) ?? 0;
      for (let attempt = 0; attempt < 2; attempt++) {
        if (old > size) break;
        const proof = old === 0 ? [] : consistencyProof(this.tree, old, size);
        const res = await fetch(`${base}/add-checkpoint`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: formatAddCheckpoint(old, proof, note),
          signal: AbortSignal.timeout(5000),
        });
        const body = await res.text();
        if (res.status === 409 && (res.headers.get('content-type') ?? '').startsWith('text/x.tlog.size')) {
          old = Number(body.trim());
          continue;
        }
        if (res.status !== 200) {
          log.error({ status: res.status, reason: body.trim() }, 'witness refused to cosign');
          return '';
        }
        // Keep only the witness's own lines, and only once they verify against its keys.
        openNote(`${text}\n${body}`, keys);
        this.witnessSizes.set(base, size);
        return parseNote(`${text}\n${body}`)
          .signatures.filter((sg) => keys.some((k) => k.name === sg.name && k.keyHash === sg.keyHash))
          .map(sigLine)
          .join('');
      }
      log.error({ size, witnessSize: old }, 'witness is ahead of this log');
    } catch (err) {
      this.witnessKeys.delete(base);
      log.warn({ err: (err as Error).message }, 'witness unreachable; checkpoint published without its cosignature');
    }
    return '';
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

  /** Entries (with their statements) whose subjects match a key: sha256:<hex>, build:<id>, commit:<sha>, rpmheader:<hex>. */
  async find(key: string): Promise<
    {
      index: number;
      stage: string;
      data: Uint8Array;
      predicate: Readonly<Record<string, unknown>>;
      subject: readonly Subject[];
    }[]
  > {
    const out = [];
    for (const idx of await this.store.lookup(key)) {
      const [e] = await this.store.entries(idx, 1);
      if (!e) continue;
      const st = peekStatement(e.data);
      out.push({ index: e.index, stage: e.kind, data: e.data, predicate: st.predicate, subject: st.subject });
    }
    return out;
  }

  get size(): number {
    return this.tree.size;
  }

  /** An offline proof bundle: every entry that names one of `keys`, followed along the chain, with proofs. */
  async bundle(
    keys: readonly string[],
    at?: { size: number; note: string },
  ): Promise<ProofBundle & { logKey: string }> {
    const cp = at ?? (await this.checkpoint());
    const seen = new Map<number, { index: number; entry: string; proof: string[] }>();
    const manifestRefs = new Set<string>();
    const queue = [...keys];
    const visited = new Set<string>();
    while (queue.length > 0) {
      const key = queue.shift()!;
      if (visited.has(key)) continue;
      visited.add(key);
      for (const e of await this.find(key)) {
        if (e.index >= cp.size || seen.has(e.index)) continue;
        seen.set(e.index, {
          index: e.index,
          entry: Buffer.from(e.data).toString('base64'),
          proof: this.inclusion(e.index, cp.size).map(hex),
        });
        // Follow the chain: a statement names its build, and sign statements their unsigned packages.
        const p = e.predicate;
        const buildId = (p['buildId'] ??
          (p['buildDefinition'] as { internalParameters?: { buildId?: number } } | undefined)?.internalParameters
            ?.buildId) as number | undefined;
        if (buildId !== undefined) queue.push(`build:${buildId}`);
        for (const pkg of (p['packages'] ?? []) as { unsigned?: { sha256: string } }[])
          if (pkg.unsigned) queue.push(`sha256:${pkg.unsigned.sha256}`);
        // Found by an installed package's header digest: follow the file it names (its tests and releases).
        if (key.startsWith(HEADER_KEY_PREFIX))
          for (const sub of e.subject)
            if (sub.digest[RPM_HEADER_DIGEST] === key.slice(HEADER_KEY_PREFIX.length) && sub.digest['sha256'])
              queue.push(`sha256:${sub.digest['sha256']}`);
        const manifest = p['manifest'] as { sha256: string } | undefined;
        if (manifest) manifestRefs.add(manifest.sha256);
      }
    }
    // Releases too large for one entry name a manifest: prove each asked-for package's line in it.
    const manifests: ManifestProof[] = [];
    for (const sha of manifestRefs) {
      const manifest = await this.manifest(sha);
      for (const key of visited)
        if (key.startsWith('sha256:')) manifests.push(...manifestProofs(manifest, key.slice(7)));
    }
    return {
      checkpoint: cp.note,
      logKey: this.verifierKey,
      entries: [...seen.values()].sort((a, b) => a.index - b.index),
      ...(manifests.length > 0 ? { manifests } : {}),
    };
  }

  /**
   * Proof bundles for installed packages, by header digest, all against one checkpoint (`lenix verify
   * --installed` asks for a machine's packages at once); a digest the log does not name is left out.
   */
  async bundlesByHeader(digests: readonly string[]): Promise<{ bundles: Record<string, ProofBundle> }> {
    const cp = await this.checkpoint();
    const bundles: Record<string, ProofBundle> = {};
    const known = await this.store.known(digests.map(headerKey));
    for (const d of new Set(digests)) {
      if (!known.has(headerKey(d))) continue;
      const { logKey: _key, ...b } = await this.bundle([headerKey(d)], cp);
      bundles[d] = b;
    }
    return { bundles };
  }

  private manifestCache = new Map<string, Manifest>();

  /** A release manifest from the blob store (parsed manifests are cached: one per large release). */
  async manifest(sha256: string): Promise<Manifest> {
    const hit = this.manifestCache.get(sha256);
    if (hit) return hit;
    const digest = parseSha256(sha256);
    if (!(await this.deps.blobs.has(digest))) throw new LenixError('NOT_FOUND', `no manifest ${sha256}`);
    let m: Manifest;
    try {
      m = parseManifest(new Uint8Array(await this.deps.blobs.readAll(digest)));
    } catch {
      throw new LenixError('NOT_FOUND', `${sha256} is not a release manifest`);
    }
    if (this.manifestCache.size >= 8) this.manifestCache.delete(this.manifestCache.keys().next().value!);
    this.manifestCache.set(sha256, m);
    return m;
  }
}
