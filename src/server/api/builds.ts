import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { BUILD_STATES } from '../../scheduler/task-state.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentBuild } from './present.js';
import { requireScope } from '../auth.js';
import { Id, ARCH, security } from './params.js';

/** Builds: list, show, events and the exact source tree (public); create and cancel (maintainer). */
export function registerBuildsRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;
  r.get(
    '/api/v1/builds',
    {
      schema: {
        summary: 'List builds, newest first',
        tags: ['public'],
        querystring: z.object({
          source: z.string().max(100).optional(),
          state: z.enum(BUILD_STATES as [string, ...string[]]).optional(),
          before: z.coerce.number().int().positive().optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      const sourceId = q.source === undefined ? undefined : (await s.sources.require(q.source)).id;
      const builds = await store.builds.list({ sourceId, state: q.state as never, beforeId: q.before, limit: q.limit });
      return { builds: builds.map((b) => presentBuild(b)) };
    },
  );

  r.get(
    '/api/v1/builds/:id',
    { schema: { summary: 'A build with its tasks and their artifacts', tags: ['public'], params: Id } },
    async (req) => {
      const build = await store.builds.get(req.params.id);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${req.params.id} does not exist`);
      const [tasks, artifacts] = await Promise.all([
        store.tasks.listOfBuild(build.id),
        store.artifacts.listOfBuild(build.id),
      ]);
      return presentBuild(build, tasks, artifacts);
    },
  );

  r.get(
    '/api/v1/builds/:id/events',
    { schema: { summary: 'The audit trail of a build', tags: ['public'], params: Id } },
    async (req) => {
      const build = await store.builds.get(req.params.id);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${req.params.id} does not exist`);
      const events = await store.builds.listEvents(build.id);
      return { events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) };
    },
  );

  r.get(
    '/api/v1/builds/:id/source.tar',
    {
      schema: {
        summary: 'The source tree a build was made from (git archive of its commit)',
        tags: ['public'],
        params: Id,
      },
    },
    async (req, reply) => {
      const build = await store.builds.get(req.params.id);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${req.params.id} does not exist`);
      const source = await store.sources.get(build.sourceId);
      if (!source) throw new LenixError('SOURCE_NOT_FOUND', `build ${build.id}'s source is gone`);
      const stream = (await s.sources.mirror(source, build.commit.sha)).archive(build.commit.sha);
      return reply
        .type('application/x-tar')
        .header(
          'content-disposition',
          `attachment; filename="${build.sourceName}-${build.commit.sha.slice(0, 12)}.tar"`,
        )
        .send(stream);
    },
  );

  r.post(
    '/api/v1/builds',
    {
      schema: {
        summary: 'Build a source at a ref (maintainer): the spec is parsed, sandboxed, before the build is accepted',
        tags: ['builds'],
        security,
        body: z.object({
          source: z.string().max(100),
          ref: z.string().max(256).optional(),
          priority: z.number().int().min(-100).max(100).optional(),
          arches: z.array(ARCH).max(16).optional(),
          repo: z.string().max(64).optional(),
          target: z.string().max(64).optional(),
        }),
      },
    },
    async (req, reply) => {
      const caller = requireScope(req.caller, 'maintainer');
      const { build, srpmTask } = await s.builds.create({ ...req.body, createdBy: caller.name });
      return reply.status(201).send(presentBuild(build, [srpmTask]));
    },
  );

  r.post(
    '/api/v1/builds/:id/cancel',
    {
      schema: {
        summary: 'Cancel a build (maintainer); running tasks are killed',
        tags: ['builds'],
        security,
        params: Id,
      },
    },
    async (req) => {
      const caller = requireScope(req.caller, 'maintainer');
      const build = await store.builds.cancel(req.params.id, `cancelled by ${caller.name}`, deps.clock.now());
      for (const t of await store.tasks.listOfBuild(build.id)) {
        deps.notifier.emit(`log:${t.id}`);
        deps.notifier.emit(`task:${t.id}`);
      }
      return presentBuild(build);
    },
  );
}
