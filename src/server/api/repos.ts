import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentRelease, presentSnapshot, presentRepo } from './present.js';
import { requireScope } from '../auth.js';
import { createReadStream } from 'node:fs';
import { parseSha256 } from '../../core/ids.js';
import { ARCH, FPR, security } from './params.js';
import { TIME_FILE, timeFile } from '../../release/mirror-tree.js';
import { directoryListing } from '../web/listing.js';

/** Repositories: records and settings (admin), rollback, and the published trees under /repos (public). */
export function registerReposRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  r.get('/api/v1/repos', { schema: { summary: 'Repositories', tags: ['repos'] } }, async () => ({
    repos: (await deps.releases.listRepos()).map(presentRepo),
  }));

  r.get(
    '/api/v1/repos/:name',
    {
      schema: {
        summary: 'A repository with its snapshots and releases',
        tags: ['repos'],
        params: z.object({ name: z.string().max(64) }),
      },
    },
    async (req) => {
      const repo = await s.releases.requireRepo(req.params.name);
      return {
        ...presentRepo(repo),
        snapshots: (await deps.releases.listSnapshots(repo.id)).map(presentSnapshot),
        releases: (await deps.releases.listReleases(repo.id, 50)).map(presentRelease),
      };
    },
  );

  r.post(
    '/api/v1/repos',
    {
      schema: {
        summary: 'Create a repository (maintainer)',
        tags: ['repos'],
        security,
        body: z.object({
          name: z.string().max(64),
          arches: z.array(ARCH).min(1).max(16),
          keys: z.array(FPR).max(8).default([]),
          keepDays: z.number().int().min(0).max(3650).default(14),
          keepVersions: z.number().int().min(0).max(1000).default(0),
          vendor: z
            .string()
            .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a lowercase purl namespace')
            .optional(),
          distro: z
            .string()
            .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
            .optional(),
          errataPrefix: z
            .string()
            .regex(/^[A-Z]{1,8}$/, '1 to 8 capital letters')
            .optional(),
          osvEcosystem: z.string().max(64).optional(),
          follow: z.string().max(64).optional(),
          autoRelease: z.boolean().optional(),
        }),
      },
    },
    async (req, reply) => {
      requireScope(req.caller, 'maintainer');
      return reply.status(201).send(presentRepo(await s.releases.createRepo(req.body)));
    },
  );

  r.post(
    '/api/v1/repos/:name/keys',
    {
      schema: {
        summary: 'Add or retire a repository key (maintainer)',
        tags: ['repos'],
        security,
        params: z.object({ name: z.string().max(64) }),
        body: z.object({ add: FPR.optional(), retire: FPR.optional() }),
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      return presentRepo(await s.releases.changeKeys(req.params.name, req.body));
    },
  );

  r.post(
    '/api/v1/repos/:name/rollback',
    {
      schema: {
        summary: 'Switch a repository back to an earlier snapshot (maintainer)',
        tags: ['repos'],
        security,
        params: z.object({ name: z.string().max(64) }),
        body: z.object({ snapshot: z.number().int().positive().optional() }),
      },
    },
    async (req) => {
      requireScope(req.caller, 'maintainer');
      const repo = await s.releases.requireRepo(req.params.name);
      const snap = await s.releases.publisher.rollback(repo, req.body.snapshot);
      return { repo: repo.name, current: snap.id };
    },
  );

  // ── the published trees ───────────────────────────────────────────────────────────────────────────

  r.get(
    '/repos/:file',
    { schema: { hide: true, params: z.object({ file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/) }) } },
    async (req, reply) => {
      // /repos/NAME is the repository's folder: its listing is at /repos/NAME/.
      if (!req.params.file.endsWith('.repo')) {
        await s.releases.requireRepo(req.params.file);
        return reply.redirect(`/repos/${req.params.file}/`, 301);
      }
      const repo = await s.releases.requireRepo(req.params.file.slice(0, -'.repo'.length));
      const base = `${req.protocol}://${req.host}`;
      return reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(s.releases.repoFile(repo, base));
    },
  );

  r.get(
    '/repos/:name/*',
    {
      schema: {
        hide: true,
        params: z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/), '*': z.string().max(1024) }),
      },
    },
    async (req, reply) => {
      const rel = req.params['*'];
      const folder = rel === '' || rel.endsWith('/');
      const parts = folder ? rel.split('/').filter(Boolean) : rel.split('/');
      if (parts.some((p) => p === '..' || p === '.' || p.includes('\0')))
        throw new LenixError('INVALID_NAME', 'path may not contain . or .. segments');
      // Hidden files (the publisher's cache beside a snapshot's metadata) are not part of a repository.
      if (parts.some((p) => p.startsWith('.'))) throw new LenixError('NOT_FOUND', `no file ${rel.slice(0, 200)}`);
      // The database names the current snapshot (whichever server published it); the whole response comes
      // from that one snapshot even if another goes live meanwhile.
      const repo = await s.releases.requireRepo(req.params.name);
      const snapshotId = repo.currentSnapshotId;
      if (snapshotId === null)
        throw new LenixError('REPO_NOT_FOUND', `repository ${req.params.name} has nothing published`);
      if (folder) {
        // A directory listing, as mirrors' web servers show one (browsable; what rsync copies is the same tree).
        const entries = await s.releases.publisher.listing(repo, snapshotId, parts);
        if (!entries) throw new LenixError('NOT_FOUND', `no folder ${rel.slice(0, 200)} in ${req.params.name}`);
        return reply
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-cache')
          .send(directoryListing(`/repos/${req.params.name}/${rel}`, entries));
      }
      if (parts.length === 1 && parts[0] === TIME_FILE) {
        const snap = await deps.releases.getSnapshot(snapshotId);
        if (!snap) throw new LenixError('NOT_FOUND', `no file ${TIME_FILE}`);
        return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(timeFile(snap));
      }
      if (parts.length === 3 && parts[1] === 'Packages' && /\.rpm(\.proof)?$/.test(parts[2]!)) {
        // Packages come from the blob store by digest, through the snapshot's index (a verified read).
        const proof = parts[2]!.endsWith('.proof');
        const name = proof ? parts[2]!.slice(0, -'.proof'.length) : parts[2]!;
        const sha = await s.releases.publisher.packageIn(snapshotId, parts[0]!, name);
        if (!sha) throw new LenixError('NOT_FOUND', `no package ${name.slice(0, 200)} in ${req.params.name}`);
        if (proof)
          // The offline proof bundle for a published package, next to it: `lenix verify PKG.rpm --bundle PKG.rpm.proof`.
          return reply
            .type('application/json')
            .header('cache-control', 'no-cache')
            .send(await s.ledger.bundle([`sha256:${sha}`]));
        const blob = await deps.blobs.open(parseSha256(sha));
        return reply
          .type('application/x-rpm')
          .header('content-length', blob.size)
          .header('cache-control', 'public, max-age=86400')
          .send(blob.stream);
      }
      const found = await s.releases.publisher.metadataFile(repo.name, snapshotId, parts);
      if (!found) throw new LenixError('NOT_FOUND', `no file ${rel.slice(0, 200)} in ${req.params.name}`);
      const { size, stream } =
        'file' in found
          ? { size: found.size, stream: createReadStream(found.file) }
          : await deps.blobs.open(parseSha256(found.sha256));
      const name = parts[parts.length - 1]!;
      const type = name.endsWith('.xml')
        ? 'application/xml'
        : name.endsWith('.asc')
          ? 'application/pgp-signature'
          : 'application/octet-stream';
      const immutable = name !== 'repomd.xml' && name !== 'repomd.xml.asc';
      return reply
        .type(type)
        .header('content-length', size)
        .header('cache-control', immutable ? 'public, max-age=86400' : 'no-cache')
        .send(stream);
    },
  );
}
