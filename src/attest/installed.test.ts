import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCheckpoint } from '../ledger/checkpoint.js';
import { MemoryHashes, inclusionProof, leafHash, rootHash } from '../ledger/merkle.js';
import { ed25519Signer, signNote } from '../ledger/note.js';
import { signEnvelope } from './dsse.js';
import { judgeInstalled } from './installed.js';
import { buildStatement, RPM_HEADER_DIGEST, releaseStatement, signStatement, sourceStatement } from './statements.js';
import type { ProofBundle } from './verify-chain.js';

const log = ed25519Signer('test.lenix/log', new Uint8Array(32).fill(5));
const other = ed25519Signer('test.lenix/log', new Uint8Array(32).fill(6));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const HEADER = '1'.repeat(64);
const SIGNED = 'a'.repeat(64);
const UNSIGNED = 'b'.repeat(64);
const COMMIT = 'c'.repeat(40);
const KEY = `${'0'.repeat(24)}ABCDEF0123456789`;

function bundle(
  o: { key?: string; header?: string; signer?: typeof log; signHeader?: boolean; release?: boolean } = {},
): ProofBundle {
  const statements = [
    sourceStatement({
      repository: '/srv/git/x',
      ref: 'main',
      commit: COMMIT,
      tree: 'd'.repeat(40),
      specPath: 'x.spec',
      specSha256: 'e'.repeat(64),
      buildId: 7,
    }),
    buildStatement({
      buildId: 7,
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
    signStatement({
      buildId: 7,
      key: o.key ?? KEY,
      pairs: [
        {
          name: 'x.rpm',
          unsigned: UNSIGNED,
          signed: SIGNED,
          header:
            o.signHeader === false
              ? undefined
              : { sha256: o.header ?? HEADER, sha1: '2'.repeat(40), payload: `sha256:${'3'.repeat(64)}` },
        },
      ],
    }),
    ...(o.release
      ? [
          releaseStatement({
            repository: 'lenix',
            releaseId: 3,
            snapshotId: 4,
            repomd: {},
            packages: [
              {
                name: 'x.rpm',
                sha256: SIGNED,
                arch: 'noarch',
                header: { sha256: HEADER, sha1: '2'.repeat(40), payload: null },
              },
            ],
            overrideReason: null,
          }),
        ]
      : []),
  ];
  const signer = o.signer ?? log;
  const data = statements.map((s) =>
    new TextEncoder().encode(
      JSON.stringify(signEnvelope(s, [{ keyid: log.verifierKey, sign: (m) => signer.sign(m) }])),
    ),
  );
  const tree = new MemoryHashes(data.map(leafHash));
  const note = signNote(
    formatCheckpoint({ origin: 'test.lenix/log', size: tree.size, root: rootHash(tree, tree.size), extensions: [] }),
    [log],
  );
  return {
    checkpoint: note,
    entries: data.map((d, i) => ({
      index: i,
      entry: Buffer.from(d).toString('base64'),
      proof: inclusionProof(tree, i, tree.size).map(hex),
    })),
  };
}

const pkg = { headerSha256: HEADER, signatureKeyId: 'abcdef0123456789' };
const keys = [log.verifierKey];

test('the sign statement names the installed header: proven, with commit, build, key and the signed file', () => {
  const j = judgeInstalled(pkg, bundle(), keys, { lenixKeys: [] });
  assert.equal(j.verdict, 'proven');
  if (j.verdict !== 'proven') return;
  assert.deepEqual(
    [j.provenance.commit, j.provenance.buildId, j.provenance.key, j.provenance.sha256],
    [COMMIT, 7, KEY, SIGNED],
  );
  assert.equal(j.provenance.repository, '/srv/git/x');
});

test('a package signed before header digests were recorded is found through a later release naming its header', () => {
  assert.equal(
    judgeInstalled(pkg, bundle({ signHeader: false }), keys, { lenixKeys: [] }).verdict,
    'not from this Lenix',
  );
  const j = judgeInstalled(pkg, bundle({ signHeader: false, release: true }), keys, { lenixKeys: [] });
  assert.equal(j.verdict, 'proven');
  if (j.verdict === 'proven') assert.deepEqual([j.provenance.sha256, j.provenance.releases], [SIGNED, ['lenix@4']]);
});

test('no statement for the header: not from this Lenix, unless it is signed by a key this Lenix signs with', () => {
  assert.equal(judgeInstalled(pkg, undefined, keys, { lenixKeys: [] }).verdict, 'not from this Lenix');
  assert.equal(judgeInstalled(pkg, undefined, keys, { lenixKeys: ['9'.repeat(40)] }).verdict, 'not from this Lenix');
  const claims = judgeInstalled(pkg, undefined, keys, { lenixKeys: [KEY] });
  assert.equal(claims.verdict, 'proof failed');
  // A bundle about another header (a server answering with something else) proves nothing about this one.
  const elsewhere = judgeInstalled(pkg, bundle({ header: '4'.repeat(64) }), keys, { lenixKeys: [KEY] });
  assert.equal(elsewhere.verdict, 'proof failed');
  assert.equal(
    judgeInstalled(pkg, bundle({ header: '4'.repeat(64) }), keys, { lenixKeys: [] }).verdict,
    'not from this Lenix',
  );
});

test('a copy signed by another key, an unsigned copy, a statement signed by another log key, a foreign checkpoint: proof failed', () => {
  const resigned = judgeInstalled({ ...pkg, signatureKeyId: '1111222233334444' }, bundle(), keys, { lenixKeys: [] });
  assert.equal(resigned.verdict, 'proof failed');
  assert.match(resigned.verdict === 'proof failed' ? resigned.reason : '', /signed by key 1111222233334444/);
  assert.equal(
    judgeInstalled({ ...pkg, signatureKeyId: null }, bundle(), keys, { lenixKeys: [] }).verdict,
    'proof failed',
  );
  assert.equal(judgeInstalled(pkg, bundle({ signer: other }), keys, { lenixKeys: [] }).verdict, 'proof failed');
  assert.equal(judgeInstalled(pkg, bundle(), [other.verifierKey], { lenixKeys: [] }).verdict, 'proof failed');
  // An entry changed after the checkpoint was signed.
  const b = bundle();
  const changed = { ...b, entries: b.entries.map((e, i) => (i === 2 ? { ...e, index: 1 } : e)) };
  assert.equal(judgeInstalled(pkg, changed, keys, { lenixKeys: [] }).verdict, 'proof failed');
});

test('the sign statement names the header digest in its subject and the header and payload digests in its predicate', () => {
  const st = signStatement({
    buildId: 1,
    key: KEY,
    pairs: [
      {
        name: 'x.rpm',
        unsigned: UNSIGNED,
        signed: SIGNED,
        header: { sha256: HEADER, sha1: '2'.repeat(40), payload: null },
      },
    ],
  });
  assert.deepEqual(st.subject[0]!.digest, { sha256: SIGNED, [RPM_HEADER_DIGEST]: HEADER });
  assert.deepEqual((st.predicate['packages'] as { header: unknown }[])[0]!.header, {
    sha256: HEADER,
    sha1: '2'.repeat(40),
  });
});
