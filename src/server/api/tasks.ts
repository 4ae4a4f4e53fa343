import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import { isFinished } from '../../scheduler/task-state.js';
import type { Services, ZodApp } from '../types.js';
import type { ServerDeps } from '../context.js';
import { presentTask } from './present.js';
import { Id } from './params.js';

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

/** Tasks and their logs: a task, its log as bytes or followed live as Server-Sent Events (public). */
export function registerTasksRoutes(r: ZodApp, deps: ServerDeps, _s: Services): void {
  const { store } = deps;

  r.get('/api/v1/tasks/:id', { schema: { summary: 'A task', tags: ['public'], params: Id } }, async (req) => {
    const task = await store.tasks.get(req.params.id);
    if (!task) throw new LenixError('TASK_NOT_FOUND', `task ${req.params.id} does not exist`);
    const artifacts = await store.artifacts.listOfBuild(task.buildId);
    return presentTask(task, artifacts);
  });

  r.get(
    '/api/v1/tasks/:id/log',
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
}
