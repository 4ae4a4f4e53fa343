import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiClient } from '../agents/kit/client.js';
import { LenixError } from '../core/errors.js';
import { writeConfig } from './config.js';
import { waitForBuild } from './main.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../bin/lenix.js', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../../samples/', import.meta.url));

/** The samples `lenix up` creates: a noarch data package, a C program, a package with a subpackage and a scriptlet. */
export const SAMPLE_NAMES = ['lenix-hello-data', 'hello-c', 'lenix-multi'] as const;

export interface UpOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly samples: boolean;
}

/**
 * `lenix up`: the server (SQLite) and a local build node as child processes that speak the same HTTP
 * protocol as remote ones. First start creates the admin token, the node's token, the CLI config and the
 * sample sources, and builds them. A restart reuses all of it.
 */
export async function runUp(o: UpOptions): Promise<void> {
  const data = o.dataDir;
  await mkdir(path.join(data, 'logs'), { recursive: true, mode: 0o700 });
  await chmod(data, 0o700);
  const children: ChildProcess[] = [];
  const stopAll = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  };
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nlenix up: stopping…\n');
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const say = (line: string) => process.stdout.write(`${line}\n`);
  const adminTokenFile = path.join(data, 'admin.token');
  const server = spawn(process.execPath, [BIN, 'server', '--data', path.join(data, 'server'), '--port', String(o.port), '--admin-token-file', adminTokenFile], {
    stdio: ['ignore', 'pipe', openSync(path.join(data, 'logs', 'server.log'), 'a')],
    env: { ...process.env, LENIX_LOG_LEVEL: process.env['LENIX_LOG_LEVEL'] ?? 'info' },
  });
  children.push(server);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /lenix server listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new LenixError('UNAVAILABLE', `the server exited (status ${code}) before listening; see ${path.join(data, 'logs', 'server.log')}`)));
  }).catch(async (err: unknown) => {
    await stopAll();
    throw err;
  });
  server.stdout!.resume();

  const adminToken = (await readFile(adminTokenFile, 'utf8')).trim();
  const admin = new ApiClient(url, adminToken);
  const configFile = await writeConfig({ server: url, token: adminToken });

  // The node's own token (agent:build scope only), created once and kept in the data folder.
  const nodeTokenFile = path.join(data, 'node', 'token');
  if (!existsSync(nodeTokenFile)) {
    await mkdir(path.dirname(nodeTokenFile), { recursive: true, mode: 0o700 });
    const t = await admin.json<{ token: string }>('POST', '/api/v1/tokens', { name: `node-${os.hostname()}`, scopes: ['agent:build'] });
    await writeFile(nodeTokenFile, `${t.token}\n`, { mode: 0o600 });
  }
  const node = spawn(
    process.execPath,
    [BIN, 'node', '--server', url, '--token-file', nodeTokenFile, '--name', `local-${os.hostname()}`, '--work', path.join(data, 'node', 'work'), '--hide', data],
    { stdio: ['ignore', openSync(path.join(data, 'logs', 'node.log'), 'a'), openSync(path.join(data, 'logs', 'node.log'), 'a')] },
  );
  children.push(node);
  node.once('exit', (code) => {
    if (!stopping) process.stderr.write(`lenix up: the build node exited (status ${code}); see ${path.join(data, 'logs', 'node.log')}\n`);
  });

  say(`Lenix is up at ${url}`);
  say(`  admin token: ${adminTokenFile}   CLI config: ${configFile}`);
  say(`  logs: ${path.join(data, 'logs')}   data: ${data}`);

  if (o.samples) await ensureSamples(admin, data, say);
  say('');
  say(`ready: ${url}  (try: lenix builds; lenix build show 1; Ctrl-C stops everything)`);
  await new Promise<void>(() => undefined);
}

async function ensureSamples(admin: ApiClient, data: string, say: (line: string) => void): Promise<void> {
  const { sources } = await admin.json<{ sources: { name: string }[] }>('GET', '/api/v1/sources');
  const fresh: string[] = [];
  for (const name of SAMPLE_NAMES) {
    if (sources.some((s) => s.name === name)) continue;
    const repo = await createSampleRepo(name, path.join(data, 'samples', name));
    await admin.json('POST', '/api/v1/sources', { name, url: repo, branch: 'main' });
    fresh.push(name);
  }
  if (fresh.length === 0) {
    say('samples: already present (builds are kept across restarts)');
    return;
  }
  say(`samples: building ${fresh.join(', ')}`);
  const builds = [];
  for (const name of fresh) builds.push(await admin.json<{ id: number; package: string; evr: string }>('POST', '/api/v1/builds', { source: name }));
  for (const b of builds) {
    const done = await waitForBuild(admin, b.id, () => undefined);
    const files = (done.tasks ?? []).flatMap((t) => t.artifacts.map((a) => a.name));
    say(`  build ${b.id} ${b.package}-${b.evr}: ${done.state}${done.reason ? ` (${done.reason})` : ''}  ${files.join(' ')}`);
  }
}

/** A sample as a local git repository with a fixed author and date, so its commits are the same everywhere. */
export async function createSampleRepo(name: string, dir: string): Promise<string> {
  if (existsSync(path.join(dir, '.git'))) return dir;
  await mkdir(dir, { recursive: true });
  await cp(path.join(SAMPLES, name), dir, { recursive: true });
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Lenix Samples',
    GIT_AUTHOR_EMAIL: 'samples@lenix.invalid',
    GIT_COMMITTER_NAME: 'Lenix Samples',
    GIT_COMMITTER_EMAIL: 'samples@lenix.invalid',
    GIT_AUTHOR_DATE: '2026-11-25T12:00:00Z',
    GIT_COMMITTER_DATE: '2026-11-25T12:00:00Z',
  };
  await run('git', ['init', '-q', '-b', 'main'], { cwd: dir, env });
  await run('git', ['add', '-A'], { cwd: dir, env });
  await run('git', ['-c', 'commit.gpgsign=false', 'commit', '-q', '-m', `${name}: sample package for Lenix`], { cwd: dir, env });
  return dir;
}
