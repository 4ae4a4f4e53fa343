import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentRelease } from './present.js';
import { requireScope } from '../auth.js';
import { security, Id } from './params.js';

/** Releases: plan, approve (admin) and follow releases into a repository. */
export function registerReleasesRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  r.get('/api/v1/releases', { schema: { summary: 'Releases, newest first', tags: ['releases'] } }, async () => ({
    releases: (await deps.releases.listReleases(undefined, 100)).map(presentRelease),
  }));

  r.get(
    '/api/v1/releases/:id',
    {
      schema: {
        summary: 'A release: plan, gates, override, outcome',
        tags: ['releases'],
        params: Id,
      },
    },
    async (req) => {
      const rel = await deps.releases.getRelease(req.params.id);
      if (!rel) throw new LenixError('RELEASE_NOT_FOUND', `no release ${req.params.id}`);
      return presentRelease(rel);
    },
  );

  r.post(
    '/api/v1/releases',
    {
      schema: {
        summary: 'Plan a release of builds into a repository (maintainer); approve at once with approve=true',
        tags: ['releases'],
        security,
        body: z.object({
          repo: z.string().max(64),
          builds: z.array(z.number().int().positive()).max(500),
          imports: z.array(z.number().int().positive()).max(500).optional(),
          approve: z.boolean().default(false),
          override: z.string().max(2000).optional(),
        }),
      },
    },
    async (req, reply) => {
      const caller = requireScope(req.caller, 'maintainer');
      return reply.status(201).send(presentRelease(await s.releases.createRelease({ ...req.body, by: caller.name })));
    },
  );

  r.post(
    '/api/v1/releases/:id/approve',
    {
      schema: {
        summary: 'Approve a planned release (maintainer); publishing starts',
        tags: ['releases'],
        security,
        params: Id,
      },
    },
    async (req) => {
      const caller = requireScope(req.caller, 'maintainer');
      return presentRelease(await s.releases.approve(req.params.id, caller.name));
    },
  );
}
