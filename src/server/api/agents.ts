import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import { LenixError } from '../../core/errors.js';
import type { Services, ZodApp } from '../types.js';
import type { Leased } from '../services/agents.js';
import type { ServerDeps } from '../context.js';
import { presentAgent, presentArtifact, presentTask } from './present.js';
import type { Readable } from 'node:stream';
import { requireScope, type Caller } from '../auth.js';
import { AGENT_ROLES, TASK_FAILURE_CODES, type AgentRole, type Outcome } from '../../scheduler/task-state.js';
import { ARTIFACT_KINDS } from '../../store/records.js';
import { security, positiveId } from './params.js';

const LeaseParams = z.object({ lease: positiveId });

/** The signal of a lease that does not wait: never aborted. */
const NEVER = new AbortController().signal;

const Fencing = z.coerce.number().int().min(1);

/** A task failure code from the closed list (scheduler/task-state.ts); anything else is refused. */
const CODE = z.enum(TASK_FAILURE_CODES);

const OutcomeBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('success') }),
  z.object({ kind: z.literal('failure'), code: CODE, reason: z.string().max(4000) }),
  z.object({ kind: z.literal('error'), code: CODE, reason: z.string().max(4000) }),
]);

function agentScope(caller: Caller | null, role: AgentRole): Caller {
  return requireScope(caller, `agent:${role}`);
}

async function readBounded(body: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) throw new LenixError('BODY_TOO_LARGE', `log chunk exceeds ${max} bytes`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

/** Agents: the public list, and the agent protocol (register, lease with long-poll, heartbeat, log append by
 * offset, artifact upload by digest, complete). Every message after lease carries the lease id and fencing token. */
export function registerAgentsRoutes(r: ZodApp, deps: ServerDeps, s: Services): void {
  const { store } = deps;
  r.get(
    '/api/v1/agents',
    { schema: { summary: 'Registered agents and whether they are online', tags: ['public'] } },
    async () => {
      const now = deps.clock.now();
      return { agents: (await store.agents.list()).map((a) => presentAgent(a, now, deps.config.leaseMs * 2)) };
    },
  );

  r.post(
    '/api/v1/agent/register',
    {
      schema: {
        summary: 'Register an agent (name, role, arches); re-registering with the same name keeps the id',
        tags: ['agent'],
        security,
        body: z.object({
          name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/),
          role: z.enum(AGENT_ROLES as [AgentRole, ...AgentRole[]]),
          arches: z
            .array(z.string().regex(/^[a-z0-9_]{1,32}$/))
            .max(16)
            .default([]),
          capabilities: z.record(z.string(), z.unknown()).default({}),
        }),
      },
    },
    async (req) => {
      const caller = agentScope(req.caller, req.body.role);
      const agent = await s.agents.register(caller, req.body);
      return { agentId: agent.id, leaseMs: deps.config.leaseMs };
    },
  );

  r.post(
    '/api/v1/agent/lease',
    {
      schema: {
        summary: 'Lease the next task for this agent; waits up to waitMs for one (204 when none)',
        tags: ['agent'],
        security,
        body: z.object({
          agentId: z.number().int().positive(),
          waitMs: z.number().int().min(0).max(60_000).default(0),
        }),
      },
    },
    async (req, reply) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'agents must present their token');
      const agent = await s.agents.agentFor(req.caller, req.body.agentId);
      agentScope(req.caller, agent.role);
      // Stop waiting if the agent hangs up during a long-poll (only then: aborting allocates a DOMException). A
      // lease that does not wait has nothing to stop.
      const closed = req.body.waitMs > 0 ? new AbortController() : null;
      const hangUp = () => {
        if (!reply.raw.writableFinished) closed?.abort();
      };
      if (closed) reply.raw.once('close', hangUp);
      const got = await s.agents
        .lease(agent, req.body.waitMs, closed?.signal ?? NEVER)
        .finally(() => closed && reply.raw.off('close', hangUp));
      if (!got) return reply.status(204).send();
      if (closed?.signal.aborted) {
        // The agent hung up while we were finding work: the lease simply expires and the task is requeued.
        req.log.warn({ task: got.grant.task.id }, 'agent left during lease');
      }
      return leaseAnswer(got);
    },
  );

  r.post(
    '/api/v1/agent/leases/:lease/heartbeat',
    {
      schema: {
        summary: 'Extend a lease; answers cancelled=true when the task was cancelled',
        tags: ['agent'],
        security,
        params: LeaseParams,
        body: z.object({ fencingToken: Fencing }),
      },
    },
    async (req) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'agents must present their token');
      return s.agents.heartbeat(req.caller, req.params.lease, req.body.fencingToken);
    },
  );

  r.post(
    '/api/v1/agent/leases/:lease/log',
    {
      bodyLimit: deps.config.maxLogChunkBytes,
      schema: {
        summary: 'Append log bytes at an offset (idempotent; a gap is refused with LOG_OFFSET_GAP)',
        tags: ['agent'],
        security,
        params: LeaseParams,
        querystring: z.object({ fencingToken: Fencing, offset: z.coerce.number().int().min(0) }),
      },
    },
    async (req) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'agents must present their token');
      if (req.headers['content-type'] !== 'application/octet-stream')
        throw new LenixError('UNSUPPORTED_MEDIA_TYPE', 'send log bytes as application/octet-stream');
      const data = await readBounded(req.body as Readable, deps.config.maxLogChunkBytes);
      const size = await s.agents.appendLog(
        req.caller,
        req.params.lease,
        req.query.fencingToken,
        req.query.offset,
        data,
      );
      return { size };
    },
  );

  r.put(
    '/api/v1/agent/leases/:lease/artifacts',
    {
      bodyLimit: deps.config.maxUploadBytes,
      schema: {
        summary: 'Upload an artifact; the server recomputes its SHA-256 and refuses a mismatch',
        tags: ['agent'],
        security,
        params: LeaseParams,
        querystring: z.object({
          fencingToken: Fencing,
          name: z.string().max(255),
          sha256: z.string().max(64),
          kind: z.enum(ARTIFACT_KINDS as [string, ...string[]]),
          parent: z
            .string()
            .regex(/^[0-9a-f]{64}$/)
            .optional(),
        }),
      },
    },
    async (req, reply) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'agents must present their token');
      if (req.headers['content-type'] !== 'application/octet-stream')
        throw new LenixError('UNSUPPORTED_MEDIA_TYPE', 'send artifacts as application/octet-stream');
      const artifact = await s.agents.upload(
        req.caller,
        req.params.lease,
        { ...req.query, kind: req.query.kind as never },
        req.body as Readable,
      );
      return reply.status(201).send(presentArtifact(artifact));
    },
  );

  r.post(
    '/api/v1/agent/leases/:lease/complete',
    {
      schema: {
        summary: 'End a lease with its outcome; accepted once, for the current fencing token only',
        tags: ['agent'],
        security,
        params: LeaseParams,
        body: z.object({
          fencingToken: Fencing,
          outcome: OutcomeBody,
          result: z.record(z.string(), z.unknown()).nullable().default(null),
          // The agent's next task in the same round trip, leased as POST /agent/lease with waitMs 0 would, but
          // never one of the completed task's build (that stage's statement is recorded after the completion).
          next: z.object({ agentId: z.number().int().positive() }).optional(),
        }),
      },
    },
    async (req) => {
      if (!req.caller) throw new LenixError('UNAUTHENTICATED', 'agents must present their token');
      const next = req.body.next && (await nextAgent(req.caller, req.body.next.agentId, req.log));
      const r2 = await s.agents.complete(
        req.caller,
        req.params.lease,
        req.body.fencingToken,
        req.body.outcome as Outcome,
        req.body.result,
        next,
      );
      const answer = { task: presentTask(r2.task), buildState: r2.buildState, queuedNew: r2.queuedNew };
      if (!req.body.next) return answer;
      return { ...answer, next: r2.next ? leaseAnswer(r2.next) : null };
    },
  );

  /**
   * The agent whose next task a completion brings. The completion is recorded whatever is wrong with it: it
   * then answers no task (the agent asks POST /agent/lease, which says why), never an error that would make the
   * agent send its result again.
   */
  async function nextAgent(caller: Caller, agentId: number, log: FastifyBaseLogger) {
    try {
      const agent = await s.agents.agentFor(caller, agentId);
      agentScope(caller, agent.role);
      return agent;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'no next task with the completion');
      return undefined;
    }
  }

  function leaseAnswer(got: Leased) {
    return {
      lease: {
        id: got.grant.lease.id,
        fencingToken: got.grant.lease.fencingToken,
        expiresAt: got.grant.lease.expiresAt,
        leaseMs: deps.config.leaseMs,
      },
      task: got.payload,
    };
  }
}
