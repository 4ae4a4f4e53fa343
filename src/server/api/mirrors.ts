import { z } from 'zod';
import { requireScope } from '../auth.js';
import type { ServerDeps } from '../context.js';
import type { Services, ZodApp } from '../types.js';
import { security } from './params.js';

const mirrorUrl = z
  .string()
  .max(1000)
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'a mirror URL is http:// or https://');
const mirrorBody = z.object({
  url: mirrorUrl,
  rsyncUrl: z
    .string()
    .max(1000)
    .regex(/^rsync:\/\/\S+$/, 'rsync://HOST/MODULE/...')
    .nullish(),
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, 'an ISO 3166 country code, two capital letters')
    .nullish(),
  contact: z.string().max(200).nullish(),
});

/** The mirror network: the registry (maintainer), metalinks (public) and a repository's emergency expire. */
export function registerMirrorsRoutes(r: ZodApp, _deps: ServerDeps, s: Services): void {
  r.get(
    '/api/v1/mirrors',
    { schema: { summary: 'Registered mirrors and their last checks', tags: ['mirrors'] } },
    async () => ({ mirrors: await s.mirrors.status() }),
  );

  r.post(
    '/api/v1/mirrors/check',
    {
      schema: {
        summary: "Check mirrors now: each one's repomd.xml per repository arch (maintainer)",
        tags: ['mirrors'],
        body: z.object({ url: mirrorUrl.optional() }),
        security,
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      return { checks: await s.mirrors.check(req.body.url) };
    },
  );

  r.post(
    '/api/v1/mirrors',
    { schema: { summary: 'Register a mirror (maintainer)', tags: ['mirrors'], body: mirrorBody, security } },
    async (req, reply) => {
      requireScope(req.caller, 'maintainer');
      const m = await s.mirrors.add({
        url: req.body.url,
        rsyncUrl: req.body.rsyncUrl ?? null,
        country: req.body.country ?? null,
        contact: req.body.contact ?? null,
      });
      return reply.status(201).send(m);
    },
  );

  r.delete(
    '/api/v1/mirrors',
    {
      schema: {
        summary: 'Remove a mirror (maintainer)',
        tags: ['mirrors'],
        querystring: z.object({ url: mirrorUrl }),
        security,
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      await s.mirrors.remove(req.query.url);
      return { removed: req.query.url };
    },
  );

  r.post(
    '/api/v1/repos/:name/expire',
    {
      schema: {
        summary: "Drop the repository's metalink alternates at once (maintainer)",
        tags: ['mirrors'],
        params: z.object({ name: z.string().max(64) }),
        security,
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      return s.mirrors.expire(req.params.name);
    },
  );

  r.get(
    '/metalink',
    {
      schema: {
        hide: true,
        querystring: z.object({
          repo: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
          arch: z.string().regex(/^[A-Za-z0-9_]{1,32}$/),
        }),
      },
    },
    async (req, reply) =>
      reply
        .type('application/metalink+xml')
        .header('cache-control', 'no-cache')
        .send(await s.mirrors.metalink(req.query.repo, req.query.arch, `${req.protocol}://${req.host}`)),
  );
}
