import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LenixError, isErrorCode } from '../core/errors.js';

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
