import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiClient } from '../../src/client/http.js';
import { LenixClient } from '../../src/client/lenix.js';
import { generateKey } from '../../src/crypto/gpg.js';
import { Proc, freePort, lenix, until } from './cli.js';

/** A running Lenix: server, build node, tester and signer as separate processes on loopback. */
export interface System {
  readonly url: string;
  readonly admin: string;
  readonly api: ApiClient;
  readonly lx: LenixClient;
  /** Environment for `lenix` commands against this server with the admin token. */
  readonly env: NodeJS.ProcessEnv;
  /** Run `lenix ARGS`; rejects with its stderr when it exits non-zero. */
  cli(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Each process's output so far (server, node, tester, signer), for a failing test to show. */
  output(): Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Start a whole system in DIR: the server (data in DIR/server, local sources allowed under DIR/repos), a build
 * node, a tester and a signer with a fresh ed25519 key (DIR/keys), each with its own scoped token; resolves once
 * the signer's key is the signing key.
 */
export async function startSystem(
  dir: string,
  o: {
    logLevel?: string;
    serverArgs?: readonly string[];
    serverEnv?: NodeJS.ProcessEnv;
    /** More arguments for the build node (`--arch`, …). */
    nodeArgs?: readonly string[];
    /** More build nodes, each with its own arguments (`--root DIR`, …). */
    extraNodes?: readonly (readonly string[])[];
    /** More arguments for the tester (`--root DIR`, …). */
    testerArgs?: readonly string[];
  } = {},
): Promise<System> {
  const procs: Proc[] = [];
  const named = new Map<string, Proc>();
  const level = { ...(o.logLevel ? { LENIX_LOG_LEVEL: o.logLevel } : {}), ...o.serverEnv };
  const stop = async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM');
  };
  try {
    const port = await freePort();
    const server = new Proc(
      [
        'server',
        '--data',
        path.join(dir, 'server'),
        '--port',
        String(port),
        '--local-source-root',
        path.join(dir, 'repos'),
        ...(o.serverArgs ?? []),
      ],
      level,
    );
    procs.push(server);
    named.set('server', server);
    const url = (await server.waitFor(/listening on (http:\S+)/))[1]!;
    const admin = (await readFile(path.join(dir, 'server', 'admin.token'), 'utf8')).trim();
    const api = new ApiClient(url, admin);
    const lx = new LenixClient(api);
    const env = { LENIX_CONFIG: path.join(dir, 'none.json'), LENIX_SERVER: url, LENIX_TOKEN: admin };
    const token = async (name: string, scope: string) =>
      (await api.json<{ token: string }>('POST', '/api/v1/tokens', { name, scopes: [scope] })).token;
    const keysDir = path.join(dir, 'keys');
    await generateKey(keysDir, 'system-key', 'ed25519');
    await Promise.all(
      (
        [
          ['node', 'node', 'agent:build', ['--work', path.join(dir, 'node-work'), ...(o.nodeArgs ?? [])]],
          ...(o.extraNodes ?? []).map(
            (args, i) =>
              [
                `node-${i + 2}`,
                'node',
                'agent:build',
                ['--name', `node-${i + 2}`, '--work', path.join(dir, `node-${i + 2}-work`), ...args],
              ] as const,
          ),
          ['tester', 'tester', 'agent:test', ['--work', path.join(dir, 'tester-work'), ...(o.testerArgs ?? [])]],
          ['signer', 'signer', 'agent:sign', ['--keys', keysDir, '--work', path.join(dir, 'signer-work')]],
        ] as const
      ).map(async ([key, role, scope, extra]) => {
        // Agents log at info: their "registered" line is what says they are up.
        const p = new Proc([role, '--server', url, '--token', await token(role, scope), ...extra], {
          LENIX_CONFIG: path.join(dir, 'none.json'),
        });
        procs.push(p);
        named.set(key, p);
        await p.waitFor(/"msg":"registered"/);
      }),
    );
    await until('the signing key', async () => (await lx.keys.list()).signingKey);
    const cli = async (...args: string[]) => {
      const r = await lenix(args, env);
      if (r.code !== 0) throw new Error(`lenix ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r;
    };
    const output = () => Object.fromEntries([...named].map(([n, p]) => [n, p.out]));
    return { url, admin, api, lx, env, cli, output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
