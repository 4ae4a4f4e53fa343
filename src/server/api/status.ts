import type { Services, ZodApp } from '../types.js';
import { LenixError } from '../../core/errors.js';
import { LEADER_ROLES } from '../leadership.js';
import type { Sha256 } from '../../core/ids.js';

/** A digest no blob has: asking the blob store for it proves the store answers. */
const NO_BLOB = '0'.repeat(64) as Sha256;
import type { ServerDeps } from '../context.js';
import { presentAdvisory, presentAgent, presentBuild, presentRelease, presentTask } from './present.js';

/** Health, the queue per architecture and the dashboard: public reads about the whole system. */
export function registerStatusRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;

  // Health and readiness are about the primary, whatever serves public reads.
  r.get(
    '/api/v1/health',
    { schema: { summary: 'Liveness and database reachability', tags: ['public'] }, config: { primaryReads: true } },
    async () => {
      await store.tokens.count();
      return { ok: true };
    },
  );

  r.get(
    '/api/v1/ready',
    {
      config: { primaryReads: true },
      schema: {
        summary: 'Readiness for a load balancer: the database and the blob store answer (503 otherwise)',
        tags: ['public'],
      },
    },
    async () => {
      try {
        await store.tokens.count();
        await deps.blobs.has(NO_BLOB);
      } catch (err) {
        const e = err instanceof LenixError ? err : null;
        throw new LenixError(
          'UNAVAILABLE',
          `not ready: ${e?.code ?? 'database'}: ${(err as Error).message}`.slice(0, 300),
        );
      }
      const roles = LEADER_ROLES.filter((role) => deps.leader.holds(role));
      return { ready: true, roles };
    },
  );

  r.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const { registry } = deps.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  r.get(
    '/api/v1/dashboard',
    {
      schema: {
        summary:
          'What the dashboard shows: queue, running tasks, agents online, latest builds, releases and advisories',
        tags: ['public'],
      },
    },
    async (_req, reply) => {
      const d = await s.dashboard.read();
      // One JSON text per read, shared by every request that gets that read.
      const text = s.dashboard.memo(d, 'json', () =>
        JSON.stringify({
          queue: d.queue,
          nodesFor: d.nodesFor,
          running: d.running.map((r) => ({
            ...presentTask(r.task),
            build: r.build ? presentBuild(r.build) : null,
            agent: r.agent,
            elapsedMs: r.task.startedAt === null ? null : d.now - r.task.startedAt,
          })),
          agentsOnline: d.agentsOnline.map((a) => ({
            ...presentAgent(a.agent, d.now, deps.config.leaseMs * 2),
            task: a.task?.id ?? null,
          })),
          builds: d.builds.map((b) => presentBuild(b)),
          releases: d.releases.map(presentRelease),
          advisories: d.advisories.map(presentAdvisory),
        }),
      );
      return reply.type('application/json; charset=utf-8').send(text);
    },
  );

  r.get(
    '/api/v1/queue',
    { schema: { summary: 'Queued build tasks per architecture', tags: ['public'] } },
    async () => ({
      build: await store.tasks.queueLength('build'),
    }),
  );
}
