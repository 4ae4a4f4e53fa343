import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ApiClient } from '../../src/client/http.js';
import { gitRepo, specWith } from './cli.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/main.js';

export interface TestServer {
  readonly server: RunningServer;
  readonly dir: string;
  readonly admin: ApiClient;
  readonly anon: ApiClient;
  client(token: string | null): ApiClient;
  token(name: string, scopes: string[]): Promise<string>;
  close(): Promise<void>;
}

/** An in-process server on a temp data folder and a free loopback port. */
export async function testServer(opts: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-srv-'));
  // Tests keep their git repositories in their own temp folder: the one local source root.
  const server = await startServer({
    dataDir: path.join(dir, 'data'),
    port: 0,
    log: pino({ level: 'silent' }),
    ...opts,
    config: { localSourceRoots: [dir], ...opts.config },
  });
  const admin = new ApiClient(server.url, server.adminToken);
  return {
    server,
    dir,
    admin,
    anon: new ApiClient(server.url, null),
    client: (t) => new ApiClient(server.url, t),
    token: async (name, scopes) =>
      (await admin.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes })).token,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Raw HTTP for tests that need the status and body exactly as sent. */
export async function http(
  base: string,
  method: string,
  url: string,
  opts: { token?: string | null; json?: unknown; body?: Uint8Array | string; type?: string } = {},
) {
  const headers: Record<string, string> = {};
  if (opts.token) headers['authorization'] = `Bearer ${opts.token}`;
  let body: string | Uint8Array | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    headers['content-type'] = opts.type ?? 'application/octet-stream';
    body = opts.body;
  }
  const res = await fetch(`${base}${url}`, { method, headers, body: body as never });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text, headers: res.headers };
}

/**
 * The API suites' server: short leases, a 64 KiB upload limit, a build node token (`node-a`), and one source
 * (`good`) whose spec builds.
 */
export async function apiServer(): Promise<{ t: TestServer; base: string; admin: string; buildToken: string }> {
  const t = await testServer({ config: { leaseMs: 600, maxUploadBytes: 64 * 1024 } });
  const base = t.server.url;
  const admin = t.server.adminToken!;
  const buildToken = await t.token('node-a', ['agent:build']);
  const repo = path.join(t.dir, 'repos', 'good');
  await gitRepo(repo, { 'good.spec': specWith('good', 'echo building') });
  const r = await http(base, 'POST', '/api/v1/sources', { token: admin, json: { name: 'good', url: repo } });
  assert.equal(r.status, 201, r.text);
  return { t, base, admin, buildToken };
}
