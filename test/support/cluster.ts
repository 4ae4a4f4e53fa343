import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiClient } from '../../src/client/http.js';
import { generateKey } from '../../src/crypto/gpg.js';
import { startRadosgw, type TestS3 } from './ceph.js';
import { freePort, Proc, until } from './cli.js';
import { startPostgres, type TestPostgres } from './postgres.js';

/** One process of the cluster, which a test may kill (SIGKILL) and start again with the same arguments. */
export interface Member {
  readonly name: string;
  readonly proc: () => Proc;
  /** The server this agent talks to, or this server's own URL. */
  readonly url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface Cluster {
  readonly dir: string;
  readonly dbUrl: string;
  readonly admin: string;
  readonly servers: readonly Member[];
  readonly agents: readonly Member[];
  api(server?: number): ApiClient;
  stop(): Promise<void>;
}

/**
 * Servers on one PostgreSQL and one S3 bucket (Ceph radosgw), sharing ledger keys, with a build node, a signer
 * and a tester spread over them (agent i talks to server i mod N). Every member can be killed and restarted.
 */
export async function startCluster(o: { servers: number; leaseSeconds?: number }): Promise<Cluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lenix-cluster-'));
  let s3: TestS3 | null = null;
  let db: TestPostgres | null = null;
  const members: Member[] = [];
  const stop = async () => {
    for (const m of [...members].reverse()) await m.kill();
    await s3?.stop();
    await db?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    [s3, db] = await Promise.all([startRadosgw(), startPostgres()]);
    const dbUrl = await db.newDatabase('cluster');
    const member = async (
      name: string,
      args: () => string[],
      env: NodeJS.ProcessEnv,
      ready: RegExp,
      url: () => string,
    ): Promise<Member> => {
      let proc: Proc | null = null;
      const m: Member = {
        name,
        proc: () => proc!,
        get url() {
          return url();
        },
        async kill() {
          await proc?.stop('SIGKILL');
        },
        async start() {
          proc = new Proc(args(), env);
          await proc.waitFor(ready);
        },
      };
      await m.start();
      members.push(m);
      return m;
    };
    const s3env = { LENIX_S3_ACCESS_KEY_ID: s3.accessKeyId, LENIX_S3_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const servers: Member[] = [];
    for (let i = 0; i < o.servers; i++) {
      const port = await freePort(); // kept across restarts: agents and clients keep their address
      servers.push(
        await member(
          `server-${i}`,
          () => [
            'server',
            '--data',
            path.join(dir, `server-${i}`),
            '--database',
            dbUrl,
            '--blobs',
            `s3://lenix-cluster?endpoint=${s3!.endpoint}`,
            '--ledger-keys',
            path.join(dir, 'ledger-keys'),
            '--port',
            String(port),
            '--lease-seconds',
            String(o.leaseSeconds ?? 10),
            '--local-source-root',
            path.join(dir, 'repos'),
          ],
          s3env,
          /listening on http:/,
          () => `http://127.0.0.1:${port}`,
        ),
      );
    }
    const admin = (await readFile(path.join(dir, 'server-0', 'admin.token'), 'utf8')).trim();
    const api = (i = 0) => new ApiClient(servers[i % servers.length]!.url, admin);
    const token = async (n: string, scope: string) =>
      (await api().json<{ token: string }>('POST', '/api/v1/tokens', { name: n, scopes: [scope] })).token;
    const keysDir = path.join(dir, 'keys');
    await generateKey(keysDir, 'cluster-key', 'ed25519');
    const agents: Member[] = [];
    for (const [i, [role, scope, extra]] of (
      [
        ['node', 'agent:build', ['--work', path.join(dir, 'node-work')]],
        ['signer', 'agent:sign', ['--keys', keysDir, '--work', path.join(dir, 'signer-work')]],
        ['tester', 'agent:test', ['--work', path.join(dir, 'tester-work')]],
      ] as const
    ).entries()) {
      const server = servers[i % servers.length]!;
      const t = await token(role, scope);
      agents.push(
        await member(
          role,
          () => [role, '--server', server.url, '--token', t, ...extra],
          { LENIX_CONFIG: path.join(dir, 'none.json') },
          /"msg":"registered"/,
          () => server.url,
        ),
      );
    }
    await until(
      'the signing key',
      async () => (await api(servers.length - 1).json<{ signingKey: string | null }>('GET', '/api/v1/keys')).signingKey,
    );
    return { dir, dbUrl, admin, servers, agents, api, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
