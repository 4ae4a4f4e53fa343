import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LenixError, isErrorCode } from '../../core/errors.js';
import { sha256File } from '../../store/durable.js';
import type { AgentRole, Outcome } from '../../scheduler/task-state.js';

/** One HTTP client for the Lenix API, used by agents and the CLI alike. */
export class ApiClient {
  readonly base: string;
  constructor(
    server: string,
    private readonly token: string | null,
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  async request(
    method: string,
    path: string,
    opts: { json?: unknown; body?: Uint8Array | string | Readable; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const init: RequestInit & { duplex?: 'half' } = { method, headers: this.headers(), signal: opts.signal ?? null };
    if (opts.json !== undefined) {
      init.body = JSON.stringify(opts.json);
      init.headers = this.headers({ 'content-type': 'application/json' });
    } else if (opts.body !== undefined) {
      init.body =
        opts.body instanceof Readable ? (Readable.toWeb(opts.body) as unknown as RequestInit['body']) : opts.body;
      init.headers = this.headers({ 'content-type': opts.contentType ?? 'application/octet-stream' });
      init.duplex = 'half';
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new LenixError(
        'UNAVAILABLE',
        `cannot reach ${this.base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`,
        { cause: err },
      );
    }
    if (res.status >= 400) throw await errorFrom(res);
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.request(method, path, { json: body, ...(signal ? { signal } : {}) });
    if (res.status === 204) return null as T;
    return (await res.json()) as T;
  }

  /** Download to a file, verifying the SHA-256 when one is expected; the file appears only when whole. */
  async download(path: string, file: string, expectedSha256?: string): Promise<string> {
    const res = await this.request('GET', path);
    if (!res.body) throw new LenixError('UNAVAILABLE', `empty response for ${path}`);
    const hash = createHash('sha256');
    const tmp = `${file}.part`;
    const body = Readable.fromWeb(res.body as never);
    body.on('data', (c: Buffer) => hash.update(c));
    await pipeline(body, createWriteStream(tmp));
    const got = hash.digest('hex');
    if (expectedSha256 !== undefined && got !== expectedSha256) {
      await unlink(tmp).catch(() => undefined);
      throw new LenixError('DIGEST_MISMATCH', `${path} hashed to ${got}, expected ${expectedSha256}`);
    }
    await rename(tmp, file);
    return got;
  }
}

export async function errorFrom(res: Response): Promise<LenixError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (isErrorCode(body.code)) return new LenixError(body.code, String(body.message ?? body.code));
  } catch {
    /* not JSON */
  }
  return new LenixError(res.status >= 500 ? 'INTERNAL' : 'BAD_REQUEST', `HTTP ${res.status}: ${text.slice(0, 200)}`);
}

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

  async complete(
    leaseId: number,
    fencingToken: number,
    outcome: Outcome,
    result: Record<string, unknown> | null,
  ): Promise<unknown> {
    return this.api.json('POST', `/api/v1/agent/leases/${leaseId}/complete`, { fencingToken, outcome, result });
  }
}
