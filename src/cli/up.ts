import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiClient } from '../client/http.js';
import { LenixClient } from '../client/lenix.js';
import { LenixError } from '../core/errors.js';
import { writeConfig } from './config.js';
import { generateKey, listSecretKeys } from '../crypto/gpg.js';
import { ensureSamples, SAMPLE_REPO } from './up-samples.js';
import { hostArch } from '../rpm/arch.js';
import { isX86Level } from '../rpm/x86-levels.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../bin/lenix.js', import.meta.url));

export interface UpOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly samples: boolean;
  /** More folders local sources may be mirrored from (besides $HOME and the samples). */
  readonly localSourceRoots?: readonly string[];
  /**
   * Architectures to build (default: the host's). The host's own and its x86-64 levels go to the local node; each
   * other one gets a system root in DATA/roots/ARCH (made once, minutes under emulation) and a node building in it.
   */
  readonly arches?: readonly string[];
  /** Where those roots are kept (default /var/cache/lenix/roots; readable by the sandbox user). */
  readonly rootsDir?: string;
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
  const keysDir = path.join(data, 'signer', 'gnupg');
  const stopAll = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)),
      ),
    );
    // gpg started an agent for the signer's key folder; it outlives the signer unless told to stop.
    await run('gpgconf', ['--homedir', keysDir, '--kill', 'gpg-agent']).catch(() => undefined);
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
  const logFile = (name: string) => path.join(data, 'logs', `${name}.log`);
  /**
   * Run a role as a child process, its output in DATA/logs/NAME.log, and start it again with backoff (1 s,
   * doubling to 30 s; back to 1 s after a minute of running) if it dies while `lenix up` is not stopping.
   */
  const supervise = (name: string, start: () => ChildProcess): ChildProcess => {
    let backoff = 1000;
    const launch = (): ChildProcess => {
      const c = start();
      const began = Date.now();
      children.push(c);
      c.once('exit', (code, signal) => {
        children.splice(children.indexOf(c), 1);
        if (stopping) return;
        if (Date.now() - began > 60_000) backoff = 1000;
        process.stderr.write(
          `lenix up: the ${name} exited (${signal ?? `status ${code}`}); restarting it in ${backoff / 1000} s; see ${logFile(name)}\n`,
        );
        setTimeout(() => {
          if (!stopping) launch();
        }, backoff).unref();
        backoff = Math.min(backoff * 2, 30_000);
      });
      return c;
    };
    return launch();
  };

  const arches = o.arches && o.arches.length > 0 ? [...new Set(o.arches)] : [hostArch()];
  const native = arches.filter((a) => a === hostArch() || (hostArch() === 'x86_64' && isX86Level(a)));
  const foreign = arches.filter((a) => !native.includes(a));
  const roots = new Map<string, string>();
  for (const arch of foreign) {
    // Not in the data folder (mode 0700): the sandbox user reads the root.
    const dir = path.join(o.rootsDir ?? '/var/cache/lenix/roots', arch);
    if (!existsSync(path.join(dir, 'lenix-root.json'))) {
      say(`making the ${arch} system root in ${dir} (once; minutes under emulation; log ${logFile(`root-${arch}`)})`);
      const log = openSync(logFile(`root-${arch}`), 'a');
      const code = await new Promise<number | null>((resolve) =>
        spawn(process.execPath, [BIN, 'node', 'root', 'create', '--arch', arch, dir], {
          stdio: ['ignore', log, log],
        }).once('exit', resolve),
      );
      if (code !== 0)
        throw new LenixError(
          'SYSTEM_ROOT_INVALID',
          `the ${arch} root could not be made (status ${code}); see ${logFile(`root-${arch}`)}`,
        );
    }
    roots.set(arch, dir);
  }

  const adminTokenFile = path.join(data, 'admin.token');
  // The server's log is its stdout (pino): all of it goes to server.log; the first line also gives its URL.
  let listening: (url: string) => void = () => undefined;
  const server = supervise('server', () => {
    // On one's own machine, repositories in one's home folder (and the samples) may be sources.
    const sourceRoots = [os.homedir(), path.join(data, 'samples'), ...(o.localSourceRoots ?? [])].flatMap((d) => [
      '--local-source-root',
      d,
    ]);
    return spawnLogged(
      logFile('server'),
      [
        'server',
        '--data',
        path.join(data, 'server'),
        '--port',
        String(o.port),
        '--admin-token-file',
        adminTokenFile,
        ...sourceRoots,
        ...arches.flatMap((a) => ['--arch', a]),
      ],
      /lenix server listening on (\S+)/,
      (u) => listening(u),
    );
  });
  const url = await new Promise<string>((resolve, reject) => {
    listening = resolve;
    server.once('exit', (code) =>
      reject(
        new LenixError('UNAVAILABLE', `the server exited (status ${code}) before listening; see ${logFile('server')}`),
      ),
    );
  }).catch(async (err: unknown) => {
    stopping = true;
    await stopAll();
    throw err;
  });

  const adminToken = (await readFile(adminTokenFile, 'utf8')).trim();
  const admin = new LenixClient(new ApiClient(url, adminToken));
  const configFile = await writeConfig({ server: url, token: adminToken });

  // Each agent has its own token, with only its role's scope, created once and kept in the data folder.
  const agentToken = async (role: 'build' | 'sign' | 'test', dir: string) => {
    const file = path.join(data, dir, 'token');
    if (!existsSync(file)) {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const t = await admin.tokens.create({ name: `${role}-${os.hostname()}`, scopes: [`agent:${role}`] });
      await writeFile(file, `${t.token}\n`, { mode: 0o600 });
    }
    return file;
  };
  const child = (name: string, args: string[]) =>
    supervise(name, () => {
      const log = openSync(logFile(name), 'a');
      return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', log, log] });
    });

  // The signer alone holds the private key, in its own folder; first start makes an RSA-4096 key.
  if ((await listSecretKeys(keysDir).catch(() => [])).length === 0) {
    const k = await generateKey(keysDir, 'lenix-up', 'rsa4096');
    say(`  created signing key ${k.fingerprint} (RSA-4096) in ${keysDir}`);
  }
  child('signer', [
    'signer',
    '--server',
    url,
    '--token-file',
    await agentToken('sign', 'signer'),
    '--keys',
    keysDir,
    '--work',
    path.join(data, 'signer', 'work'),
  ]);
  // The local node builds the host's arches; each foreign arch gets a node of its own in its system root.
  const nodeToken = await agentToken('build', 'node');
  const node = (suffix: string, extra: string[]) =>
    child(`node${suffix}`, [
      'node',
      '--server',
      url,
      '--token-file',
      nodeToken,
      '--name',
      `local-${os.hostname()}${suffix}`,
      '--work',
      path.join(data, `node${suffix}`, 'work'),
      ...extra,
    ]);
  node(
    '',
    native.flatMap((a) => ['--arch', a]),
  );
  for (const [arch, dir] of roots) node(`-${arch}`, ['--root', dir]);
  // The tester writes its test roots' id maps (the lenix-build user's subordinate ids), which needs root;
  // without it builds are signed but not tested.
  const testing = process.getuid?.() === 0;
  if (testing)
    child('tester', [
      'tester',
      '--server',
      url,
      '--token-file',
      await agentToken('test', 'tester'),
      '--name',
      `tester-${os.hostname()}`,
      '--work',
      path.join(data, 'tester', 'work'),
      ...[...roots.values()].flatMap((d) => ['--root', d]),
    ]);
  else say('  note: not running as root, so no tester: the samples are released with a recorded override');
  // New builds are signed once the signer has announced its key.
  const signingKey = await until(async () => (await admin.keys.list()).signingKey);

  const [logKey, logPqKey] = await admin.ledger.keys();
  const witness = await startLocalWitness(data, url, [logKey!, logPqKey!], admin, supervise);
  say(`Lenix is up at ${url}`);
  say(`  ledger key (pin it: lenix verify PKG.rpm --log-key KEY): ${logKey}`);
  say(`  ledger ML-DSA-44 checkpoint key: ${url}/ledger/keys (second line)`);
  say(`  witness ${witness.url}, key (lenix verify --witness-key KEY): ${witness.key}`);
  say(`  admin token: ${adminTokenFile}   CLI config: ${configFile}`);
  say(`  logs: ${path.join(data, 'logs')}   data: ${data}`);

  if (o.samples) await ensureSamples(admin, data, signingKey, testing, say, arches);
  say('');
  say(`ready: ${url}  (try: lenix builds; lenix repo show ${SAMPLE_REPO}; Ctrl-C stops everything)`);
  await new Promise<void>(() => undefined);
}

/**
 * One witness next to the server, with its own key folder: it cosigns each checkpoint the server pushes
 * (C2SP tlog-witness) and reads the published checkpoint itself. Registered with the server at each start.
 */
/**
 * A role whose stdout and stderr both go to its log file (its JSON log is on stdout), watching the start of its
 * output for the line that says where it listens.
 */
function spawnLogged(
  logFile: string,
  args: string[],
  listening: RegExp,
  onListening: (url: string) => void,
): ChildProcess {
  const log = openSync(logFile, 'a');
  const c = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', log],
    env: { ...process.env, LENIX_LOG_LEVEL: process.env['LENIX_LOG_LEVEL'] ?? 'info' },
  });
  const out = createWriteStream('', { fd: log });
  let head = '';
  c.stdout!.on('data', (d: Buffer) => {
    out.write(d);
    if (head.length < 64 * 1024) {
      head += d.toString();
      const m = listening.exec(head);
      if (m) onListening(m[1]!);
    }
  });
  return c;
}

async function startLocalWitness(
  data: string,
  url: string,
  logKeys: readonly string[],
  admin: LenixClient,
  supervise: (name: string, start: () => ChildProcess) => ChildProcess,
): Promise<{ url: string; key: string }> {
  const dir = path.join(data, 'witness');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const logFile = path.join(data, 'logs', 'witness.log');
  // The first start takes any free port; a restart keeps it, so the URL the server knows stays right.
  let port = '0';
  let found: (u: string) => void = () => undefined;
  const w = supervise('witness', () => {
    return spawnLogged(
      logFile,
      ['witness', '--log', url, ...logKeys.flatMap((k) => ['--log-key', k]), '--key', dir, '--port', port],
      /lenix witness listening on (\S+)/,
      (u) => found(u),
    );
  });
  const witnessUrl = await new Promise<string>((resolve, reject) => {
    found = resolve;
    w.once('exit', (code) =>
      reject(new LenixError('UNAVAILABLE', `the witness exited (status ${code}); see ${logFile}`)),
    );
  });
  port = new URL(witnessUrl).port;
  const previous = path.join(dir, 'registered-url');
  const old = existsSync(previous) ? (await readFile(previous, 'utf8')).trim() : '';
  if (old && old !== witnessUrl) await admin.ledger.witnesses.remove(old).catch(() => undefined);
  await admin.ledger.witnesses.add(witnessUrl);
  await writeFile(previous, `${witnessUrl}\n`);
  const key = (await (await fetch(`${witnessUrl}/key`)).text()).split('\n')[0]!;
  return { url: witnessUrl, key };
}

async function until<T>(fn: () => Promise<T | null | undefined>): Promise<T> {
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}
