import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LenixError, isErrorCode } from '../core/errors.js';

/** One HTTP client for the Lenix API, used by agents and the CLI alike. */
export class ApiClient {
  readonly base: string;
  /** The server's database position at this client's last write: sent back so reads see that write. */
  private readAfter: string | null = null;
  constructor(
    server: string,
    private readonly token: string | null,
  ) {
    this.base = server.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...(this.readAfter ? { 'lenix-read-after': this.readAfter } : {}),
      ...extra,
    };
  }

  private remember(readAfter: string | string[] | null | undefined): void {
    if (typeof readAfter === 'string') this.readAfter = readAfter;
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
    this.remember(res.headers.get('lenix-read-after'));
    if (res.status >= 400) throw await errorFrom(res);
    return res;
  }

  /**
   * A JSON call through node:http(s) rather than fetch: fetch's first use loads undici, which costs a
   * command-line call more start-up time (~55 ms here) than the request itself.
   */
  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const url = new URL(`${this.base}${path}`);
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    // With a length: Node sends a DELETE's body neither chunked nor sized otherwise, which the server refuses.
    const headers = this.headers(
      payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {},
    );
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, { method, headers, ...(signal ? { signal } : {}) }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
        this.remember(res.headers['lenix-read-after']);
        res.on('error', reject);
      });
      req.on('error', (err) => {
        if (err.name === 'AbortError') reject(err);
        else reject(new LenixError('UNAVAILABLE', `cannot reach ${this.base}: ${err.message}`, { cause: err }));
      });
      req.end(payload ?? undefined);
    });
    if (status >= 400) throw errorFromText(status, text);
    if (status === 204 || text === '') return null as T;
    return JSON.parse(text) as T;
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
  return errorFromText(res.status, await res.text().catch(() => ''));
}

function errorFromText(status: number, text: string): LenixError {
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (isErrorCode(body.code)) return new LenixError(body.code, String(body.message ?? body.code));
  } catch {
    /* not JSON */
  }
  return new LenixError(status >= 500 ? 'INTERNAL' : 'BAD_REQUEST', `HTTP ${status}: ${text.slice(0, 200)}`);
}
