import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentAdvisory } from './present.js';
import { requireScope, type Caller, hasScope } from '../auth.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ADVISORY_STATUSES, ADVISORY_TYPES, SEVERITIES } from '../../errata/advisory.js';
import { ADVISORY_ID, security } from './params.js';
import type { StoredAdvisory } from '../../store/errata-store.js';
/** Drafts and approved advisories may be embargoed: only maintainers see them; released ones are public. */
const visible = (a: StoredAdvisory, caller: Caller | null) =>
  a.status === 'released' || (caller !== null && hasScope(caller, 'maintainer'));

const Body = z.object({
  repo: z.string().max(64),
  id: ADVISORY_ID.optional(),
  type: z.enum(ADVISORY_TYPES),
  severity: z.enum(SEVERITIES).nullable().optional(),
  title: z.string().min(1).max(500),
  synopsis: z.string().max(2000).optional(),
  description: z.string().max(100_000).optional(),
  references: z.array(z.string().max(500)).max(500).optional(),
  packages: z.array(z.string().max(300)).max(5000).optional(),
  fromBuild: z.number().int().positive().optional(),
  rebootSuggested: z.boolean().optional(),
});

/** Errata: advisories (drafts and approved ones only for maintainers) and their public exports (OSV, OVAL, Atom). */
export function registerErrataRoutes(r: ZodApp, _deps: ServerDeps, s: Services): void {
  const tags = ['errata'];

  // Exports, rewritten on every publish: plain files, so mirrors can copy them.
  const file = async (rel: string, type: string, reply: import('fastify').FastifyReply) => {
    const f = path.join(s.errata.exportDir, rel);
    const st = await stat(f).catch(() => null);
    if (!st?.isFile()) throw new LenixError('NOT_FOUND', `no ${rel}`);
    return reply
      .type(type)
      .header('content-length', st.size)
      .header('cache-control', 'no-cache')
      .send(createReadStream(f));
  };

  r.get(
    '/api/v1/errata',
    {
      schema: {
        summary: 'Advisories (released ones for everyone; drafts and approved ones for maintainers)',
        tags,
        querystring: z.object({
          repo: z.string().max(64).optional(),
          type: z.enum(ADVISORY_TYPES).optional(),
          severity: z.enum(SEVERITIES).optional(),
          status: z.enum(ADVISORY_STATUSES).optional(),
        }),
      },
    },
    async (req) => ({
      errata: (await s.errata.list(req.query)).filter((a) => visible(a, req.caller)).map(presentAdvisory),
    }),
  );

  r.get(
    '/api/v1/errata/:id',
    { schema: { summary: 'One advisory', tags, params: z.object({ id: ADVISORY_ID }) } },
    async (req) => {
      const a = await s.errata.require(req.params.id);
      if (!visible(a, req.caller)) throw new LenixError('ERRATA_NOT_FOUND', `no advisory ${req.params.id}`);
      return presentAdvisory(a);
    },
  );

  r.post(
    '/api/v1/errata',
    { schema: { summary: 'Draft an advisory (maintainer)', tags, security, body: Body } },
    async (req, reply) => {
      const caller = requireScope(req.caller, 'maintainer');
      return reply.status(201).send(presentAdvisory(await s.errata.create(req.body, caller.name)));
    },
  );

  r.patch(
    '/api/v1/errata/:id',
    {
      schema: {
        summary: 'Edit an advisory (maintainer); a released one keeps its packages',
        tags,
        security,
        params: z.object({ id: ADVISORY_ID }),
        body: Body.omit({ repo: true, type: true, id: true }).partial(),
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      return presentAdvisory(await s.errata.edit(req.params.id, req.body));
    },
  );

  r.post(
    '/api/v1/errata/:id/approve',
    {
      schema: {
        summary: 'Approve an advisory (maintainer): it goes out with the release that publishes its packages',
        tags,
        security,
        params: z.object({ id: ADVISORY_ID }),
      },
    },
    async (req) => {
      const caller = requireScope(req.caller, 'maintainer');
      return presentAdvisory(await s.errata.approve(req.params.id, caller.name));
    },
  );

  r.post(
    '/api/v1/errata/import',
    {
      bodyLimit: 51 * 1024 * 1024,
      schema: {
        summary: 'Propose advisories from an upstream updateinfo.xml or OSV record (maintainer)',
        tags,
        security,
        body: z.object({
          repo: z.string().max(64),
          content: z
            .string()
            .min(1)
            .max(50 * 1024 * 1024),
        }),
      },
    },
    async (req) => {
      const caller = requireScope(req.caller, 'maintainer');
      const r2 = await s.errata.import(req.body.repo, req.body.content, caller.name);
      return { proposed: r2.proposed.map(presentAdvisory), skipped: r2.skipped };
    },
  );

  r.get(
    '/errata/oval/:file',
    { schema: { hide: true, params: z.object({ file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.xml$/) }) } },
    async (req, reply) => file(`oval/${req.params.file}`, 'application/xml', reply),
  );

  r.get(
    '/errata/osv/:file',
    {
      schema: {
        hide: true,
        params: z.object({ file: z.string().regex(/^(x_)?[A-Z]{1,8}[SBE]A-\d{4}:\d{4,}\.json$/) }),
      },
    },
    async (req, reply) => file(`osv/${req.params.file}`, 'application/json', reply),
  );

  r.get('/errata/feed.atom', { schema: { hide: true } }, async (_req, reply) =>
    file('feed.atom', 'application/atom+xml', reply),
  );
}
