import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { headerKey } from '../../core/header-digests.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { requireScope } from '../auth.js';
import { parseCheckpoint } from '../../ledger/checkpoint.js';
import { parseTilePath, TILE_WIDTH } from '../../ledger/tiles.js';
import { security } from './params.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
/** A large installation has a few thousand packages; one request asks for all of them. */
const MAX_HEADERS = 10_000;

/** The ledger, public: C2SP tlog-tiles at /ledger/..., look-ups and proof bundles under /api/v1/ledger; witnesses (admin). */
export function registerLedgerRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const ledger = s.ledger;

  const witnessBody = z.object({
    url: z
      .string()
      .url()
      .max(500)
      .refine((u) => /^https?:\/\//.test(u), 'an http(s) URL'),
  });

  r.get('/ledger/checkpoint', { schema: { hide: true } }, async (_req, reply) => {
    const cp = await ledger.checkpoint();
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(cp.note);
  });

  r.get('/ledger/key', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send(`${ledger.verifierKey}\n`),
  );

  // Every key that signs checkpoints: Ed25519 (type 0x01) and the ML-DSA-44 cosignature key (type 0x06).
  r.get('/ledger/keys', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send(`${ledger.verifierKey}\n${ledger.pqVerifierKey}\n`),
  );

  r.get('/ledger/mldsa65.pub', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send(`${Buffer.from(ledger.pqPublicKey).toString('base64')}\n`),
  );

  r.get(
    '/ledger/manifests/:sha256',
    { schema: { hide: true, params: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }) } },
    async (req, reply) => {
      const m = await ledger.manifest(req.params.sha256);
      return reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(Buffer.from(m.bytes));
    },
  );

  r.get('/ledger/*', { schema: { hide: true, params: z.object({ '*': z.string().max(200) }) } }, async (req, reply) => {
    const t = parseTilePath(req.params['*']);
    const bytes = await ledger.tile(t);
    if (!bytes) throw new LenixError('NOT_FOUND', 'that tile does not exist yet');
    // Full tiles never change: cache them for ever, so that mirrors and CDNs can serve the log.
    return reply
      .type('application/octet-stream')
      .header('cache-control', t.width === TILE_WIDTH ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(Buffer.from(bytes));
  });

  r.get(
    '/api/v1/ledger/lookup',
    {
      schema: {
        summary:
          'Ledger entries for an artifact digest, a build or a commit, with inclusion proofs against the latest checkpoint (an offline proof bundle)',
        tags: ['ledger'],
        querystring: z.object({
          sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/)
            .optional(),
          build: z.coerce.number().int().positive().optional(),
          commit: z
            .string()
            .regex(/^[0-9a-f]{40}$/)
            .optional(),
          header: sha256Hex.optional().describe("an installed package's SHA256HEADER (as its rpm database keeps it)"),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      const keys = [
        ...(q.sha256 ? [`sha256:${q.sha256}`] : []),
        ...(q.build ? [`build:${q.build}`] : []),
        ...(q.commit ? [`commit:${q.commit}`] : []),
        ...(q.header ? [headerKey(q.header)] : []),
      ];
      if (keys.length === 0) throw new LenixError('BAD_REQUEST', 'give sha256, build, commit or header');
      return ledger.bundle(keys);
    },
  );

  r.post(
    '/api/v1/ledger/lookup',
    {
      schema: {
        summary:
          "Proof bundles for a machine's installed packages, by header digest (SHA256HEADER), against one checkpoint; digests the log does not name are left out",
        tags: ['ledger'],
        body: z.object({ headers: z.array(sha256Hex).max(MAX_HEADERS) }),
      },
    },
    async (req) => ledger.bundlesByHeader(req.body.headers),
  );

  r.get(
    '/api/v1/ledger/consistency',
    {
      schema: {
        summary: 'Consistency proof between two tree sizes',
        tags: ['ledger'],
        querystring: z.object({ from: z.coerce.number().int().min(0), to: z.coerce.number().int().min(0) }),
      },
    },
    async (req) => {
      if (req.query.from > req.query.to) throw new LenixError('BAD_REQUEST', 'from must not exceed to');
      return {
        from: req.query.from,
        to: req.query.to,
        proof: ledger.consistency(req.query.from, req.query.to).map(hex),
      };
    },
  );

  r.get(
    '/api/v1/ledger/witnesses',
    { schema: { summary: 'The witnesses asked to cosign each checkpoint', tags: ['ledger'] } },
    async () => ({
      witnesses: [...new Set([...deps.config.witnesses, ...(await ledger.store.witnesses())])],
    }),
  );

  r.post(
    '/api/v1/ledger/witnesses',
    {
      schema: {
        summary: 'Add a C2SP tlog-witness (admin)',
        tags: ['ledger'],
        body: witnessBody,
        security,
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'admin');
      await ledger.store.addWitness(req.body.url.replace(/\/+$/, ''), deps.clock.now());
      return reply.status(201).send({ url: req.body.url.replace(/\/+$/, '') });
    },
  );

  r.delete(
    '/api/v1/ledger/witnesses',
    {
      schema: { summary: 'Remove a witness (admin)', tags: ['ledger'], body: witnessBody, security },
    },
    async (req) => {
      requireScope(req.caller, 'admin');
      if (!(await ledger.store.removeWitness(req.body.url.replace(/\/+$/, ''))))
        throw new LenixError('NOT_FOUND', 'no such witness');
      return { removed: req.body.url };
    },
  );

  r.get(
    '/api/v1/ledger',
    { schema: { summary: 'The ledger: size, latest checkpoint, key', tags: ['ledger'] } },
    async () => {
      const cp = await ledger.checkpoint();
      const parsed = parseCheckpoint(cp.note.slice(0, cp.note.lastIndexOf('\n\n') + 1));
      return {
        size: cp.size,
        origin: parsed.origin,
        root: hex(parsed.root),
        checkpoint: cp.note,
        key: ledger.verifierKey,
        pqKey: ledger.pqVerifierKey,
      };
    },
  );
}
