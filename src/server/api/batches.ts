import { z } from 'zod';
import { requireScope } from '../auth.js';
import type { ServerDeps } from '../context.js';
import type { Services, ZodApp } from '../types.js';
import type { BatchRecord, BuildRecord } from '../../store/records.js';
import { presentBatch } from './present.js';
import { Id, security } from './params.js';

const SOURCE = z.string().max(100);

/** Batches (chain builds, ordered batches, mass rebuilds): public reads, maintainer writes. */
export function registerBatchesRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const present = async (b: BatchRecord) => {
    const builds = new Map<number, BuildRecord>();
    for (const id of b.builds.flat()) {
      const x = await deps.store.builds.get(id);
      if (x) builds.set(id, x);
    }
    const target = await deps.store.targets.get(b.targetId);
    return presentBatch(b, target?.name ?? `target-${b.targetId}`, builds);
  };

  r.get('/api/v1/batches', { schema: { summary: 'Batches, newest first', tags: ['batches'] } }, async () => ({
    batches: await Promise.all((await s.batches.list(50)).map(present)),
  }));

  r.get(
    '/api/v1/batches/:id',
    { schema: { summary: 'A batch and its builds', tags: ['batches'], params: Id } },
    async (req) => present(await s.batches.require(req.params.id)),
  );

  r.post(
    '/api/v1/batches',
    {
      schema: {
        summary:
          'Build sources of a target in order: given groups (chain build), or ordered from their specs (maintainer)',
        tags: ['batches'],
        security,
        body: z
          .object({
            target: z.string().max(64),
            groups: z.array(z.array(SOURCE).min(1).max(2000)).min(1).max(2000).optional(),
            sources: z.array(SOURCE).min(1).max(2000).optional(),
          })
          .refine((b) => (b.groups === undefined) !== (b.sources === undefined), 'give either groups or sources'),
      },
    },
    async (req, reply) => {
      const caller = requireScope(req.caller, 'maintainer');
      return reply.status(201).send(await present(await s.batches.create({ ...req.body, by: caller.name })));
    },
  );

  r.post(
    '/api/v1/targets/:name/rebuild',
    {
      schema: {
        summary: "Rebuild every source in the target's build repository, in dependency order (maintainer)",
        tags: ['batches'],
        security,
        params: z.object({ name: z.string().max(64) }),
      },
    },
    async (req, reply) => {
      const caller = requireScope(req.caller, 'maintainer');
      return reply.status(201).send(await present(await s.batches.rebuild(req.params.name, caller.name)));
    },
  );

  r.post(
    '/api/v1/batches/:id/cancel',
    {
      schema: {
        summary: 'Cancel a batch and its running builds (maintainer)',
        tags: ['batches'],
        security,
        params: Id,
      },
    },
    async (req) => {
      const caller = requireScope(req.caller, 'maintainer');
      return present(await s.batches.cancel(req.params.id, caller.name));
    },
  );
}
