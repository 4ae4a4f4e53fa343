import { z } from 'zod';
import { requireScope } from '../auth.js';
import type { ServerDeps } from '../context.js';
import type { Services, ZodApp } from '../types.js';
import { presentTarget } from './present.js';
import { ARCH, FPR, security } from './params.js';

const REPO = z.string().max(64);
const TARGET_FIELDS = {
  buildRepo: REPO,
  fromRepos: z.array(REPO).max(16),
  externalRepos: z.array(z.object({ url: z.string().max(500), key: FPR })).max(8),
  arches: z.array(ARCH).min(1).max(16),
  macros: z
    .record(z.string().max(64), z.string().max(256))
    .refine((m) => Object.keys(m).length <= 64, 'at most 64 macros'),
  releaseTo: REPO.nullable(),
  platform: z.string().max(16).nullable(),
};

/** Build targets: public reads, maintainer writes. */
export function registerTargetsRoutes(r: ZodApp, _deps: ServerDeps, s: Services): void {
  r.get('/api/v1/targets', { schema: { summary: 'Build targets', tags: ['targets'] } }, async () => ({
    targets: (await s.targets.list()).map(presentTarget),
  }));

  r.get(
    '/api/v1/targets/:name',
    { schema: { summary: 'A build target', tags: ['targets'], params: z.object({ name: REPO }) } },
    async (req) => presentTarget(await s.targets.require(req.params.name)),
  );

  r.post(
    '/api/v1/targets',
    {
      schema: {
        summary: 'Create a build target and, when missing, its build repository (maintainer)',
        tags: ['targets'],
        security,
        body: z.object({
          name: REPO,
          ...TARGET_FIELDS,
          fromRepos: TARGET_FIELDS.fromRepos.default([]),
          externalRepos: TARGET_FIELDS.externalRepos.default([]),
          macros: TARGET_FIELDS.macros.default({}),
          releaseTo: TARGET_FIELDS.releaseTo.default(null),
          platform: TARGET_FIELDS.platform.default(null),
        }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'maintainer');
      const { name, ...input } = req.body;
      return reply.status(201).send(presentTarget(await s.targets.create(name, input)));
    },
  );

  r.patch(
    '/api/v1/targets/:name',
    {
      schema: {
        summary: 'Change a build target (maintainer); builds made already keep what they were built with',
        tags: ['targets'],
        security,
        params: z.object({ name: REPO }),
        body: z.object(TARGET_FIELDS).partial(),
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      return presentTarget(await s.targets.edit(req.params.name, req.body));
    },
  );
}
