import type { Logger } from 'pino';
import { LenixError } from '../../core/errors.js';
import { useProcessStarter } from '../../exec/exec.js';
import type { AgentRole, Outcome } from '../../scheduler/task-state.js';
import type { AgentClient, LeasedTask } from '../../client/agent.js';
import { LogStreamer } from './log-streamer.js';
import type { TaskResult } from '../../core/protocol.js';

/** What a role's handler gets for one leased task. */
export interface TaskContext<P> {
  readonly task: P;
  readonly log: LogStreamer;
  /** Aborted when the task is cancelled or the lease is lost: stop at once. */
  readonly signal: AbortSignal;
  upload(
    file: string,
    meta: { name: string; kind: string; parent?: string },
  ): Promise<{ sha256: string; size: number }>;
}

/** How a handler ends its task: the outcome, and the result the server records for the task's kind. */
export interface TaskReport {
  readonly outcome: Outcome;
  readonly result: TaskResult | null;
}

export interface AgentOptions<P> {
  readonly client: AgentClient;
  readonly name: string;
  readonly role: AgentRole;
  readonly arches: readonly string[];
  readonly capabilities?: Record<string, unknown>;
  readonly log: Logger;
  readonly stop: AbortSignal;
  readonly handle: (ctx: TaskContext<P>) => Promise<TaskReport>;
  /** Long-poll window for one lease request. */
  readonly waitMs?: number;
}

/**
 * The lease loop every agent runs: register, lease (long-poll), heartbeat while working, stream the log,
 * complete. A lost lease (expired, taken over, cancelled) aborts the handler; its result is then dropped,
 * since the server would refuse it with 409 anyway.
 */
export async function runAgent<P>(o: AgentOptions<P>): Promise<void> {
  // The agent's commands (rpmsign, rpmkeys, gpg, createrepo_c) start from the process starter (exec/exec.ts).
  useProcessStarter();
  let agentId: number | null = null;
  let backoff = 500;
  while (!o.stop.aborted) {
    try {
      if (agentId === null) {
        try {
          agentId = (
            await o.client.register({
              name: o.name,
              role: o.role,
              arches: o.arches,
              capabilities: o.capabilities ?? {},
            })
          ).agentId;
        } catch (err) {
          // A refused token or name will not fix itself: stop with the reason instead of retrying forever.
          if (err instanceof LenixError && (err.code === 'FORBIDDEN' || err.code === 'UNAUTHENTICATED')) throw err;
          throw Object.assign(err as Error, { retry: true });
        }
        o.log.info({ agentId, arches: o.arches }, 'registered');
      }
      let leased = await o.client.lease<P>(agentId, o.waitMs ?? 20_000, o.stop);
      backoff = 500;
      // Each completion brings the next task when there is one; the loop long-polls only when there is none.
      while (leased && !o.stop.aborted) leased = await runOne(o, leased, agentId);
    } catch (err) {
      if (o.stop.aborted) break;
      if (agentId === null && err instanceof LenixError && (err.code === 'FORBIDDEN' || err.code === 'UNAUTHENTICATED'))
        throw err;
      if (err instanceof LenixError && (err.code === 'AGENT_NOT_FOUND' || err.code === 'UNAUTHENTICATED'))
        agentId = null;
      o.log.warn({ err: (err as Error).message }, 'agent loop error; retrying');
      await sleepUnlessStopped(backoff, o.stop);
      backoff = Math.min(backoff * 2, 15_000);
    }
  }
}

/** Run one leased task to its completion; the agent's next task if the completion brought one. */
async function runOne<P>(o: AgentOptions<P>, leased: LeasedTask<P>, agentId: number): Promise<LeasedTask<P> | null> {
  const { id: leaseId, fencingToken, leaseMs } = leased.lease;
  const lost = new AbortController();
  const onStop = () => lost.abort();
  o.stop.addEventListener('abort', onStop, { once: true });
  const log = new LogStreamer((offset, data) =>
    o.client.appendLog(leaseId, fencingToken, offset, data).then((r) => r.size),
  );
  const beat = setInterval(
    () => {
      o.client
        .heartbeat(leaseId, fencingToken)
        .then((r) => {
          if (r.cancelled) {
            o.log.info({ leaseId }, 'task cancelled');
            lost.abort();
          }
        })
        .catch((err: unknown) => {
          if (err instanceof LenixError && err.status === 409) {
            o.log.warn({ leaseId, code: err.code }, 'lease lost');
            lost.abort();
          }
        });
    },
    Math.max(200, Math.floor(leaseMs / 3)),
  );
  try {
    let res: TaskReport;
    try {
      res = await o.handle({
        task: leased.task,
        log,
        signal: lost.signal,
        upload: (file, meta) => o.client.upload(leaseId, fencingToken, file, meta),
      });
    } catch (err) {
      const e = err as Error;
      res = { outcome: { kind: 'error', code: 'AGENT_ERROR', reason: e.message.slice(0, 1000) }, result: null };
      log.write(`lenix: agent error: ${e.message}\n`);
    }
    await log.close();
    if (lost.signal.aborted) return null;
    // A server or database that is away for a moment (a restart, a failover) should not cost the task's
    // work: the result is sent again while the lease may still be ours (the server accepts it once).
    for (let attempt = 1, wait = 500; ; attempt++, wait = Math.min(wait * 2, 8_000)) {
      try {
        const done = await o.client.complete<P>(
          leaseId,
          fencingToken,
          res.outcome,
          res.result,
          o.stop.aborted ? undefined : agentId,
        );
        return done.next ?? null;
      } catch (err) {
        const transient = !(err instanceof LenixError) || err.status >= 500;
        if (!transient || attempt >= 6 || lost.signal.aborted || o.stop.aborted) throw err;
        o.log.warn({ leaseId, err: (err as Error).message }, 'completion not delivered; sending again');
        await sleepUnlessStopped(wait, o.stop);
      }
    }
  } catch (err) {
    if (err instanceof LenixError && err.status === 409) {
      o.log.warn({ leaseId, code: err.code }, 'result refused: the lease is no longer ours');
      return null;
    }
    throw err;
  } finally {
    clearInterval(beat);
    o.stop.removeEventListener('abort', onStop);
  }
}

function sleepUnlessStopped(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      stop.removeEventListener('abort', done);
      resolve();
    }
    stop.addEventListener('abort', done, { once: true });
  });
}
