import type { Readable } from 'node:stream';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { parsePlainName, parseSha256 } from '../../core/ids.js';
import type { Services, ZodApp } from '../types.js';
import { SCOPES, requireScope } from '../auth.js';
import type { ServerDeps } from '../context.js';
import type { TokenRecord } from '../../store/records.js';
import { presentBuild, presentSource } from './present.js';

const Id = z.object({
  id: z.coerce
    .number()
    .int()
    .positive()
    .max(2 ** 31 - 1),
});
const ARCH = z.string().regex(/^[a-z0-9_]{1,32}$/, 'an architecture name such as x86_64');

/** Writes: each needs a token with the right scope (auth.ts). */
export function registerWriteRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;
  const security = [{ bearer: [] }];

  r.post(
    '/sources',
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
          build = (await s.builds.createFor(source, { ref: head.sha, createdBy: `watch:${source.name}` })).build;
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
    '/sources/:name/refresh',
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

  r.post(
    '/builds',
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
    '/builds/:id/cancel',
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

  r.put(
    '/lookaside',
    {
      bodyLimit: deps.config.maxUploadBytes,
      schema: {
        summary: 'Upload a source tarball to the lookaside area (maintainer); returns its SHA-256',
        tags: ['lookaside'],
        security,
        querystring: z.object({ name: z.string().max(255), sha256: z.string().optional() }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'maintainer');
      const name = parsePlainName(req.query.name, 'lookaside file name');
      const expected = req.query.sha256 === undefined ? undefined : parseSha256(req.query.sha256);
      if (req.headers['content-type'] !== 'application/octet-stream')
        throw new LenixError('UNSUPPORTED_MEDIA_TYPE', 'send the file as application/octet-stream');
      const { sha256, size } = await deps.blobs.put(req.body as Readable, {
        expected,
        maxBytes: deps.config.maxUploadBytes,
      });
      await store.artifacts.addLookaside(sha256, name, size, deps.clock.now());
      return reply.status(201).send({ sha256, size, name, metadataLine: `${sha256} SOURCES/${name}` });
    },
  );

  r.post(
    '/tokens',
    {
      schema: {
        summary: 'Create a token (admin); the secret is shown once',
        tags: ['tokens'],
        security,
        body: z.object({
          // No control or format characters (NUL, bidi overrides such as U+202E): names are shown in pages and logs.
          name: z
            .string()
            .min(1)
            .max(100)
            .regex(/^[^\p{Cc}\p{Cf}]+$/u, 'no control or format characters'),
          scopes: z
            .array(z.enum(SCOPES as unknown as [string, ...string[]]))
            .min(1)
            .max(5),
          expiresInDays: z.number().int().min(1).max(3650).optional(),
        }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'admin');
      const { record, secret } = await s.tokens.create(req.body.name, req.body.scopes, req.body.expiresInDays);
      return reply.status(201).send({ ...presentToken(record), token: secret });
    },
  );

  r.get(
    '/tokens',
    {
      schema: {
        summary: 'Every token (admin): name, scopes, created, expiry, revocation; never the secret',
        tags: ['tokens'],
        security,
      },
    },
    async (req) => {
      requireScope(req.caller, 'admin');
      return { tokens: (await s.tokens.list()).map(presentToken) };
    },
  );

  r.delete(
    '/tokens/:id',
    {
      schema: {
        summary:
          'Revoke a token (admin): refused at once; the leases of agents holding it end and their tasks go back to the queue',
        tags: ['tokens'],
        security,
        params: z.object({
          id: z.coerce
            .number()
            .int()
            .positive()
            .max(2 ** 31 - 1),
        }),
      },
    },
    async (req) => presentToken(await s.tokens.revoke(req.params.id, requireScope(req.caller, 'admin'))),
  );

  r.get(
    '/tokens/self',
    { schema: { summary: 'Who the presented token is', tags: ['tokens'], security } },
    async (req) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'no token presented');
      return { id: req.caller.tokenId, name: req.caller.name, scopes: req.caller.scopes };
    },
  );
}

export function presentToken(t: TokenRecord) {
  const iso = (n: number | null) => (n === null ? null : new Date(n).toISOString());
  return {
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
  };
}
