import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { SBOM_FORMATS, type SbomFormat } from '../../attest/sbom.js';
import type { ServedSbom } from '../services/sboms.js';

const format = z.object({ format: z.enum(SBOM_FORMATS).default('cyclonedx-json') });

const EXT: Record<SbomFormat, string> = {
  'cyclonedx-json': 'cdx.json',
  'cyclonedx-xml': 'cdx.xml',
  'spdx-json': 'spdx.json',
  'spdx-tag-value': 'spdx',
};

function send(reply: FastifyReply, sbom: ServedSbom, name: string, f: SbomFormat) {
  return reply
    .type(sbom.mediaType)
    .header('content-disposition', `inline; filename="${name}.${EXT[f]}"`)
    .header('x-lenix-sbom-sha256', sbom.sha256)
    .header('x-lenix-ledger-entry', String(sbom.entry))
    .header('cache-control', 'no-cache')
    .send(sbom.body);
}

/** SBOMs (public reads): for a build, a package by digest, a repository snapshot. Formats: see SBOM_FORMATS. */
export function registerSbomRoutes(r: ZodApp, _deps: ServerDeps, s: Services): void {
  const tags = ['sbom'];

  r.get(
    '/api/v1/builds/:id/sbom',
    {
      schema: {
        summary: 'SBOM of a build (SRPM and every binary RPM)',
        tags,
        params: z.object({ id: z.coerce.number().int().positive() }),
        querystring: format,
      },
    },
    async (req, reply) =>
      send(reply, await s.sboms.forBuild(req.params.id, req.query.format), `build-${req.params.id}`, req.query.format),
  );

  r.get(
    '/api/v1/artifacts/:sha256/sbom',
    {
      schema: {
        summary: 'SBOM of one RPM, by its sha256',
        tags,
        params: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
        querystring: format,
      },
    },
    async (req, reply) =>
      send(
        reply,
        await s.sboms.forArtifact(req.params.sha256, req.query.format),
        req.params.sha256.slice(0, 16),
        req.query.format,
      ),
  );

  r.get(
    '/api/v1/repos/:name/snapshots/:snapshot/sbom',
    {
      schema: {
        summary: 'SBOM of a repository snapshot (every package in it); snapshot "current" for the published one',
        tags,
        params: z.object({
          name: z.string().max(64),
          snapshot: z.union([z.literal('current'), z.coerce.number().int().positive()]),
        }),
        querystring: format,
      },
    },
    async (req, reply) => {
      const snap = req.params.snapshot === 'current' ? null : req.params.snapshot;
      const sbom = await s.sboms.forSnapshot(req.params.name, snap, req.query.format);
      return send(reply, sbom, `${req.params.name}-${req.params.snapshot}`, req.query.format);
    },
  );
}
