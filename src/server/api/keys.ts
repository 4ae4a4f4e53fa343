import { z } from 'zod';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { requireScope } from '../auth.js';
import { FPR, security } from './params.js';
import { iso } from './present.js';

/** Signing keys: the public keys the server knows (/api/v1/keys, /keys/FILE.asc) and the signing key (admin). */
export function registerKeysRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  r.get('/api/v1/keys', { schema: { summary: 'Public signing keys the server knows', tags: ['keys'] } }, async () => ({
    signingKey: await deps.releases.getSetting('signing_key'),
    keys: (await deps.releases.listKeys()).map((k) => ({
      fingerprint: k.fingerprint,
      name: k.name,
      algorithm: k.algorithm,
      createdAt: iso(k.createdAt),
      url: `/keys/${k.fingerprint}.asc`,
    })),
  }));

  r.post(
    '/api/v1/keys',
    {
      schema: {
        summary: 'Register a public key (signer or admin); private keys never cross the API',
        tags: ['keys'],
        security,
        body: z.object({
          publicKey: z.string().max(65536),
          /** `verify`: a key packages are checked against (imports), never made the signing key by default. */
          use: z.enum(['signing', 'verify']).default('signing'),
        }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'agent:sign');
      const k = await s.releases.addKey(req.body.publicKey, { defaultSigning: req.body.use === 'signing' });
      return reply.status(201).send({ fingerprint: k.fingerprint, name: k.name, algorithm: k.algorithm });
    },
  );

  r.put(
    '/api/v1/keys/signing',
    {
      schema: {
        summary: 'Choose the key new builds are signed with (admin)',
        tags: ['keys'],
        security,
        body: z.object({ fingerprint: FPR }),
      },
    },
    async (req) => {
      requireScope(req.caller, 'admin');
      const k = await s.releases.useKey(req.body.fingerprint);
      return { signingKey: k.fingerprint };
    },
  );

  r.get(
    '/keys/:file',
    { schema: { hide: true, params: z.object({ file: z.string().regex(/^[0-9A-Fa-f]{40}\.asc$/) }) } },
    async (req, reply) => {
      const k = await s.releases.requireKey(req.params.file.slice(0, 40));
      return reply.type('application/pgp-keys').header('cache-control', 'public, max-age=300').send(k.publicKey);
    },
  );
}
