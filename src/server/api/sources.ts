import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentBuild, presentSource } from './present.js';
import { requireScope } from '../auth.js';
import { security } from './params.js';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';

/**
 * Sources (git repositories of specs): list and show (public); add, refresh and webhook secrets (maintainer);
 * push events (signed with the source's secret, no token).
 */
export function registerSourcesRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;
  r.get('/api/v1/sources', { schema: { summary: 'List mirrored sources', tags: ['public'] } }, async () => ({
    sources: (await store.sources.list()).map(presentSource),
  }));

  r.get(
    '/api/v1/sources/:name',
    {
      schema: {
        summary: 'A source with its recent commits',
        tags: ['public'],
        params: z.object({ name: z.string().max(100) }),
      },
    },
    async (req) => {
      const source = await s.sources.require(req.params.name);
      const commits = await store.sources.listCommits(source.id, 50);
      const builds = await store.builds.list({ sourceId: source.id, limit: 50 });
      return {
        ...presentSource(source),
        commits: commits.map((c) => ({
          sha: c.sha,
          tree: c.tree,
          committedAt: new Date(c.committedAt * 1000).toISOString(),
          subject: c.subject,
        })),
        builds: builds.map((b) => presentBuild(b)),
      };
    },
  );

  r.post(
    '/api/v1/sources',
    {
      schema: {
        summary: 'Mirror a git repository as a source (maintainer)',
        tags: ['sources'],
        security,
        body: z.object({
          name: z.string().max(100),
          url: z.string().max(2048),
          branch: z.string().max(200).optional(),
          watch: z.boolean().default(false),
          target: z.string().max(64).optional(),
        }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'maintainer');
      const { source, head } = await s.sources.add(req.body);
      // Watching starts with a build of the current tip; a tip that cannot be built is reported, not fatal.
      let build = null;
      let buildError = null;
      if (source.watch) {
        try {
          const target = req.body.target === undefined ? {} : { target: req.body.target };
          build = (await s.builds.createFor(source, { ref: head.sha, createdBy: `watch:${source.name}`, ...target }))
            .build;
        } catch (err) {
          if (!(err instanceof LenixError)) throw err;
          buildError = err.toJSON();
        }
      }
      return reply
        .status(201)
        .send({ ...presentSource(source), head: head.sha, build: build ? presentBuild(build) : null, buildError });
    },
  );

  r.post(
    '/api/v1/sources/:name/hook-secret',
    {
      schema: {
        summary: 'A new webhook secret for the source (maintainer); the old one stops working',
        tags: ['sources'],
        security,
        params: z.object({ name: z.string().max(100) }),
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      const { source, secret } = await s.push.newSecret(req.params.name);
      return { source: source.name, secret, url: `/api/v1/sources/${encodeURIComponent(source.name)}/hook` };
    },
  );

  r.post(
    '/api/v1/sources/:name/refresh',
    {
      schema: {
        summary: 'Fetch a source mirror now (maintainer)',
        tags: ['sources'],
        security,
        params: z.object({ name: z.string().max(100) }),
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      const source = await s.sources.require(req.params.name);
      const head = await s.sources.refresh(source);
      return { ...presentSource(source), head: head.sha };
    },
  );

  // A forge's push event: the body is read raw, as its signature covers the exact bytes.
  r.register(async (hooks) => {
    hooks.removeContentTypeParser('application/json');
    hooks.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    hooks.withTypeProvider<ZodTypeProvider>().post(
      '/api/v1/sources/:name/hook',
      {
        schema: {
          summary: 'A push event (GitHub, Gitea/Forgejo, GitLab or `lenix hook post-receive`): build new commits',
          tags: ['sources'],
          params: z.object({ name: z.string().max(100) }),
        },
      },
      async (req, reply) => {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const builds = await s.push.hook(req.params.name, req.headers, body);
        return reply.status(202).send({ builds: builds.map((b) => presentBuild(b)) });
      },
    );
  });
}
