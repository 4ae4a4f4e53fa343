import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { SCOPES, requireScope } from '../auth.js';
import { presentToken } from './present.js';
import { security, Id } from './params.js';

/** API tokens: create, list and revoke (admin); who am I (any token). */
export function registerTokensRoutes(r: ZodApp, _deps: ServerDeps, s: Services): void {
  r.post(
    '/api/v1/tokens',
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
    '/api/v1/tokens',
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
    '/api/v1/tokens/:id',
    {
      schema: {
        summary:
          'Revoke a token (admin): refused at once; the leases of agents holding it end and their tasks go back to the queue',
        tags: ['tokens'],
        security,
        params: Id,
      },
    },
    async (req) => presentToken(await s.tokens.revoke(req.params.id, requireScope(req.caller, 'admin'))),
  );

  r.get(
    '/api/v1/tokens/self',
    { schema: { summary: 'Who the presented token is', tags: ['tokens'], security } },
    async (req) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'no token presented');
      return { id: req.caller.tokenId, name: req.caller.name, scopes: req.caller.scopes };
    },
  );
}
