import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCheckpoint } from '../ledger/checkpoint.js';
import { MemoryHashes, consistencyProof, inclusionProof, leafHash, rootHash } from '../ledger/merkle.js';
import { ed25519Signer, signNote } from '../ledger/note.js';
import { signEnvelope } from './dsse.js';
import { buildStatement, signStatement, sourceStatement } from './statements.js';
import { verifyChain, type ProofBundle } from './verify-chain.js';

const log = ed25519Signer('test.lenix/log', new Uint8Array(32).fill(3));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const SIGNED = 'a'.repeat(64);
const UNSIGNED = 'b'.repeat(64);
const COMMIT = 'c'.repeat(40);

function entries(commit = COMMIT): Uint8Array[] {
  const statements = [
    sourceStatement({
      repository: '/srv/git/x',
      ref: 'main',
      commit,
      tree: 'd'.repeat(40),
      specPath: 'x.spec',
      specSha256: 'e'.repeat(64),
      buildId: 1,
    }),
    buildStatement({
      buildId: 1,
      repository: '/srv/git/x',
      ref: 'main',
      commit,
      arches: ['x86_64'],
      builders: ['node-1'],
      startedOn: null,
      finishedOn: null,
      artifacts: [{ name: 'x.rpm', sha256: UNSIGNED }],
      buildroots: [],
      logs: [],
    }),
    signStatement({ buildId: 1, key: 'F'.repeat(40), pairs: [{ name: 'x.rpm', unsigned: UNSIGNED, signed: SIGNED }] }),
  ];
  return statements.map((s) =>
    new TextEncoder().encode(JSON.stringify(signEnvelope(s, [{ keyid: log.verifierKey, sign: (m) => log.sign(m) }]))),
  );
}

function bundleOf(data: Uint8Array[], signer = log, include = 3): { bundle: ProofBundle; tree: MemoryHashes } {
  const tree = new MemoryHashes(data.map(leafHash));
  const note = signNote(
    formatCheckpoint({ origin: 'test.lenix/log', size: tree.size, root: rootHash(tree, tree.size), extensions: [] }),
    [signer],
  );
  return {
    tree,
    bundle: {
      checkpoint: note,
      entries: data.slice(0, include).map((d, i) => ({
        index: i,
        entry: Buffer.from(d).toString('base64'),
        proof: inclusionProof(tree, i, tree.size).map(hex),
      })),
    },
  };
}

test('the chain from a signed package back to its commit verifies', () => {
  const { bundle } = bundleOf(entries());
  const c = verifyChain(bundle, log.verifierKey, SIGNED, { require: ['sign', 'build', 'source'] });
  assert.deepEqual(
    c.links.map((l) => l.stage),
    ['source', 'build', 'sign'],
  );
  assert.equal(c.summary.build?.commit, COMMIT);
  assert.equal(c.summary.sign?.unsigned, UNSIGNED);
});

test('a checkpoint for a rewritten tree is caught by the consistency check against an earlier one', () => {
  const honest = bundleOf(entries());
  const earlier = { size: 2, root: rootHash(honest.tree, 2) };
  // The log later shows a tree where history was rewritten (another commit), properly signed by its own key.
  const forked = bundleOf([...entries('f'.repeat(40)), new Uint8Array([1])]);
  const proof = consistencyProof(forked.tree, 2, forked.tree.size).map(hex);
  assert.throws(
    () => verifyChain(forked.bundle, log.verifierKey, SIGNED, { previous: { ...earlier, proof } }),
    /checkpoint: not consistent/,
  );
  const grown = bundleOf([...entries(), new Uint8Array([1])]);
  const ok = verifyChain(grown.bundle, log.verifierKey, SIGNED, {
    previous: { ...earlier, proof: consistencyProof(grown.tree, 2, grown.tree.size).map(hex) },
  });
  assert.equal(ok.treeSize, 4);
});

test('a checkpoint signed by another key, or a statement signed by another key, fails and is named', () => {
  const other = ed25519Signer('test.lenix/log', new Uint8Array(32).fill(4));
  assert.throws(() => verifyChain(bundleOf(entries(), other).bundle, log.verifierKey, SIGNED), /checkpoint: /);
  const foreign = entries();
  foreign[2] = new TextEncoder().encode(
    JSON.stringify(
      signEnvelope(
        JSON.parse(Buffer.from(JSON.parse(new TextDecoder().decode(foreign[2])).payload, 'base64').toString()),
        [{ keyid: log.verifierKey, sign: (m) => other.sign(m) }],
      ),
    ),
  );
  assert.throws(
    () => verifyChain(bundleOf(foreign).bundle, log.verifierKey, SIGNED),
    /entry 2: statement signature does not verify/,
  );
});

test('with a pinned ML-DSA-65 key, every statement must also carry a valid post-quantum signature', async () => {
  const { mldsaKeys, mldsaSign, mldsaVerify } = await import('../crypto/mldsa.js');
  const { mldsaKeyId } = await import('./dsse.js');
  const pq = mldsaKeys(65, new Uint8Array(32).fill(5));
  const keyid = mldsaKeyId(pq.publicKey);
  const data = [
    sourceStatement({
      repository: '/srv/git/x',
      ref: 'main',
      commit: COMMIT,
      tree: 'd'.repeat(40),
      specPath: 'x.spec',
      specSha256: 'e'.repeat(64),
      buildId: 1,
    }),
    buildStatement({
      buildId: 1,
      repository: '/srv/git/x',
      ref: 'main',
      commit: COMMIT,
      arches: ['x86_64'],
      builders: ['node-1'],
      startedOn: null,
      finishedOn: null,
      artifacts: [{ name: 'x.rpm', sha256: UNSIGNED }],
      buildroots: [],
      logs: [],
    }),
    signStatement({ buildId: 1, key: 'F'.repeat(40), pairs: [{ name: 'x.rpm', unsigned: UNSIGNED, signed: SIGNED }] }),
  ].map((s) =>
    new TextEncoder().encode(
      JSON.stringify(
        signEnvelope(s, [
          { keyid: log.verifierKey, sign: (m) => log.sign(m) },
          { keyid, sign: (m) => mldsaSign(65, pq.secretKey, m) },
        ]),
      ),
    ),
  );
  const { bundle } = bundleOf(data);
  const ok = verifyChain(bundle, log.verifierKey, SIGNED, {
    pq: { keyid, verify: (m, s) => mldsaVerify(65, pq.publicKey, m, s) },
  });
  assert.equal(ok.links.length, 3);
  const other = mldsaKeys(65, new Uint8Array(32).fill(6));
  assert.throws(
    () =>
      verifyChain(bundle, log.verifierKey, SIGNED, {
        pq: { keyid, verify: (m, s) => mldsaVerify(65, other.publicKey, m, s) },
      }),
    /entry 0: the mldsa65 signature does not verify/,
  );
  assert.throws(
    () => verifyChain(bundleOf(entries()).bundle, log.verifierKey, SIGNED, { pq: { keyid, verify: () => true } }),
    /mldsa65 signature does not verify/,
    'an envelope without the ML-DSA signature',
  );
});

test('a release of 10,000 packages fits one log entry through its manifest, and verify finds the package in it', async () => {
  const { buildManifest, manifestProofs } = await import('./manifest.js');
  const { releaseStatement } = await import('./statements.js');
  const { MAX_ENTRY_SIZE } = await import('../ledger/tiles.js');
  const packages = Array.from({ length: 10_000 }, (_, i) => ({
    name: `p${i}-1-1.x86_64.rpm`,
    arch: 'x86_64',
    sha256: i.toString(16).padStart(64, '0'),
  }));
  packages.push({ name: 'x.rpm', arch: 'x86_64', sha256: SIGNED });
  const manifest = buildManifest(packages);
  const release = releaseStatement(
    {
      repository: 'big',
      releaseId: 1,
      snapshotId: 1,
      repomd: { x86_64: 'f'.repeat(64) },
      packages,
      overrideReason: null,
    },
    manifest,
  );
  const data = [
    ...entries(),
    new TextEncoder().encode(
      JSON.stringify(signEnvelope(release, [{ keyid: log.verifierKey, sign: (m) => log.sign(m) }])),
    ),
  ];
  assert.ok(data[3]!.length < MAX_ENTRY_SIZE, `${data[3]!.length} bytes`);
  const { bundle } = bundleOf(data, log, 4);
  assert.throws(
    () => verifyChain(bundle, log.verifierKey, SIGNED, { require: ['release'] }),
    /release: no release statement/,
    'without the manifest proof',
  );
  const withProof = { ...bundle, manifests: manifestProofs(manifest, SIGNED) };
  assert.deepEqual(verifyChain(withProof, log.verifierKey, SIGNED, { require: ['release'] }).summary.releases, [
    { repository: 'big', snapshot: 1 },
  ]);
  const forged = { ...bundle, manifests: manifestProofs(manifest, SIGNED).map((p) => ({ ...p, index: p.index - 1 })) };
  assert.throws(
    () => verifyChain(forged, log.verifierKey, SIGNED, { require: ['release'] }),
    /release: no release statement/,
  );
});

test('pinned witness keys and the ML-DSA-44 log key must have signed the checkpoint', async () => {
  const { ed25519Cosigner } = await import('../ledger/note.js');
  const { mldsa44Cosigner } = await import('../ledger/note-mldsa.js');
  const now = () => 1_750_000_000_000;
  const ml = mldsa44Cosigner('test.lenix/log', new Uint8Array(32).fill(8), now);
  const witness = ed25519Cosigner('w.example', new Uint8Array(32).fill(9), now);
  const data = entries();
  const tree = new MemoryHashes(data.map(leafHash));
  const text = formatCheckpoint({
    origin: 'test.lenix/log',
    size: tree.size,
    root: rootHash(tree, tree.size),
    extensions: [],
  });
  const proofs = data.map((d, i) => ({
    index: i,
    entry: Buffer.from(d).toString('base64'),
    proof: inclusionProof(tree, i, tree.size).map(hex),
  }));
  const cosigned: ProofBundle = { checkpoint: signNote(text, [log, ml, witness]), entries: proofs };
  const bare: ProofBundle = { checkpoint: signNote(text, [log]), entries: proofs };
  assert.equal(
    verifyChain(cosigned, [log.verifierKey, ml.verifierKey], SIGNED, { witnesses: [witness.verifierKey] }).links.length,
    3,
  );
  assert.throws(
    () => verifyChain(bare, log.verifierKey, SIGNED, { witnesses: [witness.verifierKey] }),
    /witness: no signature by w.example/,
  );
  assert.throws(
    () => verifyChain(bare, [log.verifierKey, ml.verifierKey], SIGNED),
    /checkpoint: no signature by test.lenix\/log \(ML-DSA-44\)/,
  );
  assert.throws(() => verifyChain(cosigned, [ml.verifierKey], SIGNED), /log key: pin the log's Ed25519 key/);
});
