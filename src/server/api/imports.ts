import type { Readable } from 'node:stream';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { requireScope } from '../auth.js';
import type { ServerDeps } from '../context.js';
import type { Services, ZodApp } from '../types.js';
import { presentImport } from './present.js';
import { FPR, security } from './params.js';

/** Imported packages: upload (maintainer), list (public). */
export function registerImportsRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  r.get('/api/v1/imports', { schema: { summary: 'Imported packages, newest first', tags: ['imports'] } }, async () => ({
    imports: (await s.imports.list(200)).map(presentImport),
  }));

  r.put(
    '/api/v1/imports',
    {
      bodyLimit: deps.config.maxUploadBytes,
      schema: {
        summary:
          'Import an RPM built elsewhere (maintainer): its signature is checked against the key given (or it must be unsigned with allowUnsigned); refused files leave nothing',
        tags: ['imports'],
        security,
        querystring: z.object({
          name: z.string().max(255),
          repo: z.string().max(64),
          key: FPR.optional(),
          allowUnsigned: z.enum(['0', '1']).default('0'),
        }),
      },
    },
    async (req, reply) => {
      const caller = requireScope(req.caller, 'maintainer');
      if (req.headers['content-type'] !== 'application/octet-stream')
        throw new LenixError('UNSUPPORTED_MEDIA_TYPE', 'send the package as application/octet-stream');
      const record = await s.imports.import(req.body as Readable, {
        name: req.query.name,
        repo: req.query.repo,
        key: req.query.key,
        allowUnsigned: req.query.allowUnsigned === '1',
        by: caller.name,
      });
      return reply.status(201).send(presentImport(record));
    },
  );
}
