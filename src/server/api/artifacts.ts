import { presentArtifact } from './present.js';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { parseSha256, parsePlainName } from '../../core/ids.js';
import { lookasidePathFor } from '../../core/lookaside.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import type { Readable } from 'node:stream';
import { requireScope } from '../auth.js';
import { Sha, security } from './params.js';

/** Artifacts and lookaside files by digest: downloads and metadata (public); lookaside upload (maintainer). */
export function registerArtifactsRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;
  r.post(
    '/api/v1/prune',
    {
      schema: {
        summary: 'Prune old snapshots and the bytes of artifacts nothing references (admin)',
        tags: ['artifacts'],
        body: z.object({
          keepDays: z.number().int().min(0).max(36500),
          keepBuilds: z.number().int().min(0).max(100000),
          dryRun: z.boolean().default(false),
        }),
        security,
      },
    },
    async (req) => {
      requireScope(req.caller, 'admin');
      return s.retention.prune(req.body);
    },
  );

  r.get(
    '/api/v1/artifacts/:sha256',
    {
      schema: {
        summary: 'The bytes of an artifact, an imported package or a lookaside file, verified against its digest',
        tags: ['public'],
        params: Sha,
      },
    },
    async (req, reply) => {
      const sha = parseSha256(req.params.sha256);
      const artifact = await store.artifacts.findBySha(sha);
      const imported = artifact ? null : await store.imports.findBySha(sha);
      const known = artifact !== null || imported !== null || (await store.artifacts.hasLookaside(sha));
      if (!known) throw new LenixError('ARTIFACT_NOT_FOUND', `no artifact ${sha}`);
      if (artifact?.prunedAt && !(await deps.blobs.has(sha)))
        throw new LenixError(
          'ARTIFACT_PRUNED',
          `${artifact.name}: its bytes were pruned by the retention policy (lenix verify ${sha} shows its provenance)`,
        );
      const { size, stream } = await deps.blobs.open(sha);
      const type =
        artifact?.kind === 'rpm' || artifact?.kind === 'srpm' || imported
          ? 'application/x-rpm'
          : artifact?.kind === 'log'
            ? 'text/plain; charset=utf-8'
            : 'application/octet-stream';
      const head = reply
        .type(type)
        .header('content-length', size)
        .header('x-checksum-sha256', sha)
        .header('cache-control', 'public, max-age=31536000, immutable');
      const name = artifact?.name ?? imported?.name;
      if (name) head.header('content-disposition', `attachment; filename="${name}"`);
      return head.send(stream);
    },
  );

  r.get(
    '/api/v1/artifacts/:sha256/meta',
    { schema: { summary: 'The record of an artifact', tags: ['public'], params: Sha } },
    async (req) => {
      const artifact = await store.artifacts.findBySha(parseSha256(req.params.sha256));
      if (!artifact) throw new LenixError('ARTIFACT_NOT_FOUND', `no artifact ${req.params.sha256}`);
      return { ...presentArtifact(artifact), buildId: artifact.buildId, taskId: artifact.taskId };
    },
  );

  r.get(
    '/api/v1/lookaside/:sha256',
    { schema: { summary: 'A lookaside source file by digest', tags: ['public'], params: Sha } },
    async (req, reply) => {
      const sha = parseSha256(req.params.sha256);
      if (!(await store.artifacts.hasLookaside(sha)))
        throw new LenixError('ARTIFACT_NOT_FOUND', `no lookaside file ${sha}`);
      const { size, stream } = await deps.blobs.open(sha);
      return reply.type('application/octet-stream').header('content-length', size).send(stream);
    },
  );

  r.put(
    '/api/v1/lookaside',
    {
      bodyLimit: deps.config.maxUploadBytes,
      schema: {
        summary: 'Upload a source tarball to the lookaside area (maintainer); returns its SHA-256',
        tags: ['lookaside'],
        security,
        querystring: z.object({
          name: z.string().max(255),
          sha256: z.string().optional(),
          /** The source the file is for: the metadata line then has the path its spec's layout needs. */
          source: z.string().max(100).optional(),
        }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'maintainer');
      const name = parsePlainName(req.query.name, 'lookaside file name');
      const source = req.query.source === undefined ? null : await s.sources.require(req.query.source);
      const expected = req.query.sha256 === undefined ? undefined : parseSha256(req.query.sha256);
      if (req.headers['content-type'] !== 'application/octet-stream')
        throw new LenixError('UNSUPPORTED_MEDIA_TYPE', 'send the file as application/octet-stream');
      const { sha256, size } = await deps.blobs.put(req.body as Readable, {
        expected,
        maxBytes: deps.config.maxUploadBytes,
      });
      await store.artifacts.addLookaside(sha256, name, size, deps.clock.now());
      // Where rpmbuild reads it: SOURCES/ next to SPECS/, or the root beside a spec there.
      const layouts = { specs: `${sha256} ${lookasidePathFor('SPECS/x.spec', name)}`, root: `${sha256} ${name}` };
      const specPath = source ? await s.sources.specPathOf(source) : null;
      if (source && !specPath)
        throw new LenixError('SPEC_NOT_FOUND', `no single spec file at the root or in SPECS/ of ${source.name}`);
      return reply.status(201).send({
        sha256,
        size,
        name,
        metadataLine: specPath ? `${sha256} ${lookasidePathFor(specPath, name)}` : null,
        layouts,
      });
    },
  );
}
