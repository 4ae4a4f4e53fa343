import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { AgentRole, Outcome } from '../scheduler/task-state.js';
import { sha256File } from '../store/durable.js';
import type { ApiClient } from './http.js';
import type { TaskResult } from '../core/protocol.js';

export interface LeasedTask<P> {
  readonly lease: {
    readonly id: number;
    readonly fencingToken: number;
    readonly expiresAt: number;
    readonly leaseMs: number;
  };
  readonly task: P;
}

/** The agent side of the protocol: thin typed calls. */
export class AgentClient {
  constructor(readonly api: ApiClient) {}

  async register(a: {
    name: string;
    role: AgentRole;
    arches: readonly string[];
    capabilities?: Record<string, unknown>;
  }): Promise<{ agentId: number; leaseMs: number }> {
    return this.api.json('POST', '/api/v1/agent/register', { capabilities: {}, ...a });
  }

  async lease<P>(agentId: number, waitMs: number, signal?: AbortSignal): Promise<LeasedTask<P> | null> {
    return this.api.json('POST', '/api/v1/agent/lease', { agentId, waitMs }, signal);
  }

  async heartbeat(leaseId: number, fencingToken: number): Promise<{ expiresAt: number; cancelled: boolean }> {
    return this.api.json('POST', `/api/v1/agent/leases/${leaseId}/heartbeat`, { fencingToken });
  }

  async appendLog(leaseId: number, fencingToken: number, offset: number, data: Uint8Array): Promise<{ size: number }> {
    const res = await this.api.request(
      'POST',
      `/api/v1/agent/leases/${leaseId}/log?fencingToken=${fencingToken}&offset=${offset}`,
      { body: data },
    );
    return (await res.json()) as { size: number };
  }

  async upload(
    leaseId: number,
    fencingToken: number,
    file: string,
    meta: { name: string; kind: string; parent?: string },
  ): Promise<{ sha256: string; size: number }> {
    const sha256 = await sha256File(file);
    const { size } = await stat(file);
    const q = new URLSearchParams({
      fencingToken: String(fencingToken),
      name: meta.name,
      sha256,
      kind: meta.kind,
      ...(meta.parent ? { parent: meta.parent } : {}),
    });
    const res = await this.api.request('PUT', `/api/v1/agent/leases/${leaseId}/artifacts?${q}`, {
      body: createReadStream(file),
    });
    await res.json();
    return { sha256, size };
  }

  /**
   * End a lease with its outcome. With `nextFor` (this agent's id) the answer also holds the agent's next task,
   * leased without waiting (null when there is none, and never a task of the same build: that one is leased on
   * its own): one round trip for the end of one task and the start of the next.
   */
  async complete<P>(
    leaseId: number,
    fencingToken: number,
    outcome: Outcome,
    result: TaskResult | null,
    nextFor?: number,
  ): Promise<{ next?: LeasedTask<P> | null }> {
    return this.api.json('POST', `/api/v1/agent/leases/${leaseId}/complete`, {
      fencingToken,
      outcome,
      result,
      ...(nextFor === undefined ? {} : { next: { agentId: nextFor } }),
    });
  }
}
