import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { parseSha256 } from '../../core/ids.js';
import { BUILD_STATES, isFinished } from '../../scheduler/task-state.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentAgent, presentArtifact, presentBuild, presentSource, presentTask } from './present.js';
import { dashboard } from '../services/dashboard.js';
import { presentAdvisory } from './errata-routes.js';
import { presentRelease } from './release-routes.js';

const Id = z.object({
  id: z.coerce
    .number()
    .int()
    .positive()
    .max(2 ** 31 - 1),
});
const Sha = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 digest: 64 lowercase hex characters') });

/** Anonymous, read-only: everything a user, a mirror or an auditor may look at. */
export function registerPublicRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;

  r.get('/health', { schema: { summary: 'Liveness and database reachability', tags: ['public'] } }, async () => {
    await store.tokens.count();
    return { ok: true };
  });

  r.get('/sources', { schema: { summary: 'List mirrored sources', tags: ['public'] } }, async () => ({
    sources: (await store.sources.list()).map(presentSource),
  }));

  r.get(
    '/sources/:name',
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

  r.get(
    '/builds',
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
    '/builds/:id',
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
    '/builds/:id/events',
    { schema: { summary: 'The audit trail of a build', tags: ['public'], params: Id } },
    async (req) => {
      const build = await store.builds.get(req.params.id);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${req.params.id} does not exist`);
      const events = await store.builds.listEvents(build.id);
      return { events: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) };
    },
  );

  r.get(
    '/builds/:id/source.tar',
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
      const stream = s.sources.mirrorOf({ name: build.sourceName }).archive(build.commit.sha);
      return reply
        .type('application/x-tar')
        .header(
          'content-disposition',
          `attachment; filename="${build.sourceName}-${build.commit.sha.slice(0, 12)}.tar"`,
        )
        .send(stream);
    },
  );

  r.get('/tasks/:id', { schema: { summary: 'A task', tags: ['public'], params: Id } }, async (req) => {
    const task = await store.tasks.get(req.params.id);
    if (!task) throw new LenixError('TASK_NOT_FOUND', `task ${req.params.id} does not exist`);
    const artifacts = await store.artifacts.listOfBuild(task.buildId);
    return presentTask(task, artifacts);
  });

  r.get(
    '/tasks/:id/log',
    {
      schema: {
        summary:
          'A task log: what exists, or with follow=1 a Server-Sent Events stream of new bytes until the task ends',
        tags: ['public'],
        params: Id,
        querystring: z.object({
          follow: z.enum(['0', '1', 'true', 'false']).optional(),
          offset: z.coerce.number().int().min(0).default(0),
        }),
      },
    },
    async (req, reply) => {
      const task = await store.tasks.get(req.params.id);
      if (!task) throw new LenixError('TASK_NOT_FOUND', `task ${req.params.id} does not exist`);
      const follow = req.query.follow === '1' || req.query.follow === 'true';
      if (!follow) {
        const bytes = await store.logs.read(task.id, req.query.offset);
        return reply.type('text/plain; charset=utf-8').header('x-lenix-task-state', task.state).send(bytes);
      }
      return followLog(req, reply, deps, task.id, req.query.offset);
    },
  );

  r.get(
    '/artifacts/:sha256',
    {
      schema: {
        summary: 'The bytes of an artifact or lookaside file, verified against its digest',
        tags: ['public'],
        params: Sha,
      },
    },
    async (req, reply) => {
      const sha = parseSha256(req.params.sha256);
      const artifact = await store.artifacts.findBySha(sha);
      const known = artifact !== null || (await store.artifacts.hasLookaside(sha));
      if (!known) throw new LenixError('ARTIFACT_NOT_FOUND', `no artifact ${sha}`);
      const { size, stream } = await deps.blobs.open(sha);
      const type =
        artifact?.kind === 'rpm' || artifact?.kind === 'srpm'
          ? 'application/x-rpm'
          : artifact?.kind === 'log'
            ? 'text/plain; charset=utf-8'
            : 'application/octet-stream';
      const head = reply
        .type(type)
        .header('content-length', size)
        .header('x-checksum-sha256', sha)
        .header('cache-control', 'public, max-age=31536000, immutable');
      if (artifact) head.header('content-disposition', `attachment; filename="${artifact.name}"`);
      return head.send(stream);
    },
  );

  r.get(
    '/artifacts/:sha256/meta',
    { schema: { summary: 'The record of an artifact', tags: ['public'], params: Sha } },
    async (req) => {
      const artifact = await store.artifacts.findBySha(parseSha256(req.params.sha256));
      if (!artifact) throw new LenixError('ARTIFACT_NOT_FOUND', `no artifact ${req.params.sha256}`);
      return { ...presentArtifact(artifact), buildId: artifact.buildId, taskId: artifact.taskId };
    },
  );

  r.get(
    '/lookaside/:sha256',
    { schema: { summary: 'A lookaside source file by digest', tags: ['public'], params: Sha } },
    async (req, reply) => {
      const sha = parseSha256(req.params.sha256);
      if (!(await store.artifacts.hasLookaside(sha)))
        throw new LenixError('ARTIFACT_NOT_FOUND', `no lookaside file ${sha}`);
      const { size, stream } = await deps.blobs.open(sha);
      return reply.type('application/octet-stream').header('content-length', size).send(stream);
    },
  );

  r.get(
    '/agents',
    { schema: { summary: 'Registered agents and whether they are online', tags: ['public'] } },
    async () => {
      const now = deps.clock.now();
      return { agents: (await store.agents.list()).map((a) => presentAgent(a, now, deps.config.leaseMs * 2)) };
    },
  );

  r.get(
    '/dashboard',
    {
      schema: {
        summary:
          'What the dashboard shows: queue, running tasks, agents online, latest builds, releases and advisories',
        tags: ['public'],
      },
    },
    async () => {
      const d = await dashboard(deps, s.errata);
      return {
        queue: d.queue,
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
      };
    },
  );

  r.get('/queue', { schema: { summary: 'Queued build tasks per architecture', tags: ['public'] } }, async () => ({
    build: await store.tasks.queueLength('build'),
  }));
}

const inflight = new Map<string, Promise<unknown>>();

/** Run `f` once for concurrent callers with the same key (the result is shared, never mutated). */
function shared<T>(key: string, f: () => Promise<T>): Promise<T> {
  let p = inflight.get(key) as Promise<T> | undefined;
  if (!p) {
    p = f().finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}

/**
 * Server-Sent Events: `log` events carry `{offset, text}` for each new piece of the log, then one `end` event
 * with the task's final state. Bytes come from the database, so a follower on any replica sees every byte;
 * the notifier only makes it prompt. A client that reconnects sends Last-Event-ID (the byte offset).
 */
async function followLog(
  req: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  taskId: number,
  from: number,
): Promise<void> {
  const lastId = Number(req.headers['last-event-id']);
  let offset = Number.isInteger(lastId) && lastId >= 0 ? lastId : from;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const closed = new AbortController();
  req.raw.on('close', () => closed.abort());
  const decoder = new TextDecoder('utf-8');
  let pending = new Uint8Array(0);
  const send = (event: string, id: number | null, data: unknown) => {
    res.write(`event: ${event}\n${id === null ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
  };
  let lastBeat = Date.now();
  while (!closed.signal.aborted) {
    // Followers of one task wake together: they share one read of the task and of the log at an offset.
    const task = await shared(`task:${taskId}`, () => deps.store.tasks.get(taskId));
    const bytes = await shared(`log:${taskId}:${offset}`, () => deps.store.logs.read(taskId, offset, 1024 * 1024));
    if (bytes.length > 0) {
      // Split on a UTF-8 boundary so that multi-byte characters are never cut between events.
      const all = new Uint8Array(pending.length + bytes.length);
      all.set(pending);
      all.set(bytes, pending.length);
      let cut = all.length;
      while (cut > 0 && cut > all.length - 4 && (all[cut - 1]! & 0xc0) === 0x80) cut--;
      if (cut > 0 && all[cut - 1]! >= 0xc0) cut--;
      const text = decoder.decode(all.subarray(0, cut));
      pending = all.slice(cut);
      const start = offset - (all.length - bytes.length);
      offset += bytes.length;
      if (text.length > 0) send('log', offset - pending.length, { offset: start, text });
      lastBeat = Date.now();
      continue;
    }
    if (!task || isFinished(task.state)) {
      if (pending.length > 0) send('log', offset, { offset: offset - pending.length, text: decoder.decode(pending) });
      send('end', offset, { state: task?.state ?? 'unknown', reasonCode: task?.reasonCode ?? null, size: offset });
      break;
    }
    if (Date.now() - lastBeat > 15_000) {
      res.write(': keep-alive\n\n');
      lastBeat = Date.now();
    }
    await deps.notifier.wait(`log:${taskId}`, 1000, closed.signal);
  }
  res.end();
}
