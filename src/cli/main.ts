import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import pino from 'pino';
import { runBuildNode } from '../agents/builder/build-node.js';
import type { ApiClient } from '../client/http.js';
import { AgentClient } from '../client/agent.js';
import { LenixError } from '../core/errors.js';
import type { presentBuild, presentSource, presentAgent } from '../server/api/present.js';
import { hostArch, startServer } from '../server/main.js';
import { DEFAULT_CONFIG } from '../server/context.js';
import { agentStart, apiClientFor } from './config.js';
import { followLog } from './follow.js';
import { ago, collect, duration, printJson, table } from './output.js';
import { addReleaseCommands } from './release-commands.js';
import { addVerifyCommand } from './verify.js';
import { addSbomCommand } from './sbom-command.js';
import { addErrataCommands } from './errata-commands.js';
import { LENIX_VERSION } from '../core/version.js';
import { addLedgerCommands } from './ledger-commands.js';
import { runUp } from './up.js';
import { addFsckCommand } from './fsck-command.js';
import { resolveSandboxIdentity } from '../rpm/sandbox-identity.js';
import { addLimitOptions, limitsFrom, type LimitFlags } from './sandbox-options.js';

type BuildJson = ReturnType<typeof presentBuild> & { tasks?: TaskJson[] };
type TaskJson = NonNullable<ReturnType<typeof presentBuild>['tasks']>[number];
type SourceJson = ReturnType<typeof presentSource>;
type AgentJson = ReturnType<typeof presentAgent>;

interface Global {
  server?: string;
  token?: string;
}

const client = apiClientFor;

/** `state.code` is the exit code an action asks for (commander discards action return values). */
function program(state: { code: number }): Command {
  const p = new Command('lenix')
    .version(LENIX_VERSION)
    .description('Lenix: build, sign, test and publish RPM packages from git, transparently')
    .option('--server <url>', 'server URL (default: $LENIX_SERVER, the config file, or http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default: $LENIX_TOKEN or the config file)')
    .showHelpAfterError()
    .exitOverride();

  p.command('up')
    .description('run the all-in-one system: server on SQLite, a local build node, sample packages')
    .option(
      '--data <dir>',
      'data folder',
      process.env['LENIX_DATA'] ?? path.join(os.homedir(), '.local', 'share', 'lenix'),
    )
    .option('--port <port>', 'HTTP port', '8080')
    .option('--no-samples', 'do not create and build the sample sources')
    .option(
      '--local-source-root <dir>',
      'a folder local sources may come from (repeatable; your home folder and the samples always may)',
      collect,
    )
    .action(async (o: { data: string; port: string; samples: boolean; localSourceRoot?: string[] }) => {
      await runUp({
        dataDir: path.resolve(o.data),
        port: Number(o.port),
        samples: o.samples,
        localSourceRoots: (o.localSourceRoot ?? []).map((d) => path.resolve(d)),
      });
    });

  p.command('server')
    .description('run the Master Service API')
    .option('--data <dir>', 'data folder (database, blobs, git mirrors)', './lenix-data/server')
    .option('--database <url>', 'postgres://… for PostgreSQL; default SQLite at DATA/lenix.db')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', '8080')
    .option('--arch <arch>', "target architecture (repeatable; default: this host's)", collect)
    .option('--admin-token-file <file>', 'where the first start writes the admin token (default DATA/admin.token)')
    .option('--lease-seconds <n>', 'lease length', '30')
    .option('--max-attempts <n>', 'attempts before a task fails for good', '3')
    .option('--watch-seconds <n>', 'poll interval for watched sources', '30')
    .option(
      '--witness <url>',
      'a C2SP tlog-witness asked to cosign each checkpoint (repeatable; more can be added with lenix ledger witnesses add)',
      collect,
    )
    .option('--sbom-supplier <name>', 'supplier named in SBOMs', DEFAULT_CONFIG.sbomSupplier)
    .option('--sbom-vendor <ns>', 'purl namespace in SBOMs for repositories that set none', DEFAULT_CONFIG.sbomVendor)
    .option(
      '--sbom-distro <id>',
      'purl distro qualifier in SBOMs for repositories that set none',
      DEFAULT_CONFIG.sbomDistro,
    )
    .option(
      '--spec-timeout <seconds>',
      'wall-clock limit of the sandboxed spec parse at build creation',
      String(DEFAULT_CONFIG.specCheckLimits.timeoutMs / 1000),
    )
    .option('--max-log <mib>', 'log bytes kept per task', String(DEFAULT_CONFIG.maxLogBytes / 1024 ** 2))
    .option(
      '--local-source-root <dir>',
      'a folder on this machine that sources may be mirrored from (repeatable; none by default)',
      collect,
    )
    .action(
      async (o: {
        data: string;
        database?: string;
        host: string;
        port: string;
        arch?: string[];
        adminTokenFile?: string;
        leaseSeconds: string;
        maxAttempts: string;
        watchSeconds: string;
        witness?: string[];
        sbomSupplier: string;
        sbomVendor: string;
        sbomDistro: string;
        specTimeout: string;
        maxLog: string;
        localSourceRoot?: string[];
      }) => {
        const specTimeout = Number(o.specTimeout);
        const maxLog = Number(o.maxLog);
        if (!(specTimeout >= 1) || !(maxLog >= 1))
          throw new LenixError('BAD_REQUEST', '--spec-timeout and --max-log must be numbers ≥ 1');
        const server = await startServer({
          dataDir: path.resolve(o.data),
          database: o.database ?? process.env['LENIX_DATABASE'],
          host: o.host,
          port: Number(o.port),
          arches: o.arch && o.arch.length > 0 ? o.arch : [hostArch()],
          adminTokenFile: o.adminTokenFile,
          config: {
            leaseMs: Number(o.leaseSeconds) * 1000,
            maxAttempts: Number(o.maxAttempts),
            watchIntervalMs: Number(o.watchSeconds) * 1000,
            witnesses: o.witness ?? [],
            sbomSupplier: o.sbomSupplier,
            sbomVendor: o.sbomVendor.toLowerCase(),
            sbomDistro: o.sbomDistro,
            specCheckLimits: { ...DEFAULT_CONFIG.specCheckLimits, timeoutMs: specTimeout * 1000 },
            maxLogBytes: Math.round(maxLog * 1024 ** 2),
            localSourceRoots: (o.localSourceRoot ?? []).map((d) => path.resolve(d)),
          },
        });
        process.stdout.write(`lenix server listening on ${server.url}\n`);
        await waitForSignal();
        await server.close();
      },
    );

  addLimitOptions(
    p
      .command('node')
      .description('run a build node: lease build tasks and run rpmbuild in a sandbox')
      .option('--token-file <file>', 'read the agent token from a file')
      .option('--arch <arch>', "architecture to build (repeatable; default: this host's)", collect)
      .option('--name <name>', 'node name', `${os.hostname()}`)
      .option('--work <dir>', 'work folder', path.join(os.tmpdir(), 'lenix-node')),
    { timeoutSeconds: 7200 },
  ).action(
    async (o: LimitFlags & { tokenFile?: string; arch?: string[]; name: string; work: string }, cmd: Command) => {
      const limits = limitsFrom(o);
      const identity = await resolveSandboxIdentity();
      const { api, stop } = await agentStart(
        cmd.optsWithGlobals<Global>(),
        o.tokenFile,
        'a build node (scope agent:build)',
      );
      await runBuildNode({
        client: new AgentClient(api),
        api,
        name: o.name,
        arches: o.arch && o.arch.length > 0 ? o.arch : [hostArch()],
        workRoot: path.resolve(o.work),
        identity,
        limits,
        log: pino({ level: process.env['LENIX_LOG_LEVEL'] ?? 'info', base: { role: 'node', node: o.name } }),
        stop,
      });
    },
  );

  const source = p.command('source').description('git sources');
  source
    .command('add <name> <url>')
    .description('mirror a git repository (local path or URL)')
    .option('--branch <branch>', 'branch to build (default: the remote HEAD)')
    .option('--watch', 'build every new commit on the branch', false)
    .option('--json', 'print JSON')
    .action(async (name: string, url: string, o: { branch?: string; watch: boolean; json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      const resolved = /^[a-z]+:\/\//.test(url) || /^[\w.-]+@[\w.-]+:/.test(url) ? url : path.resolve(url);
      const s = await api.json<SourceJson & { head: string; build: BuildJson | null }>('POST', '/api/v1/sources', {
        name,
        url: resolved,
        branch: o.branch,
        watch: o.watch,
      });
      if (o.json) return printJson(s);
      process.stdout.write(
        `source ${s.name}: ${s.url} (${s.branch}) at ${s.head.slice(0, 12)}${s.watch ? ', watching' : ''}\n`,
      );
      if (s.build) process.stdout.write(`build ${s.build.id} queued\n`);
    });
  source
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { sources } = await (await client(cmd)).json<{ sources: SourceJson[] }>('GET', '/api/v1/sources');
      if (o.json) return printJson(sources);
      process.stdout.write(
        `${table(
          sources.map((s) => [s.name, s.branch, s.watch ? 'yes' : 'no', s.url]),
          ['NAME', 'BRANCH', 'WATCH', 'URL'],
        )}\n`,
      );
    });

  p.command('build <target> [id]')
    .description('build SOURCE[@REF]; or `lenix build show ID`; or `lenix build cancel ID`')
    .option('--wait', 'wait for the build to finish, showing progress', false)
    .option('--priority <n>', 'priority (-100..100)')
    .option('--arch <arch>', 'target architecture (repeatable)', collect)
    .option('--repo <name>', 'the repository the build is meant for (its test root includes that repository)')
    .option('--json', 'print JSON')
    .action(
      async (
        target: string,
        id: string | undefined,
        o: { wait: boolean; priority?: string; arch?: string[]; repo?: string; json?: boolean },
        cmd: Command,
      ) => {
        const api = await client(cmd);
        if (target === 'show' || target === 'cancel') {
          const n = Number(id);
          if (!Number.isInteger(n) || n <= 0)
            throw new LenixError('BAD_REQUEST', `lenix build ${target} needs a build id`);
          const b =
            target === 'show'
              ? await api.json<BuildJson>('GET', `/api/v1/builds/${n}`)
              : await api.json<BuildJson>('POST', `/api/v1/builds/${n}/cancel`, {});
          if (o.json) return printJson(b);
          return printBuild(target === 'show' ? b : await api.json<BuildJson>('GET', `/api/v1/builds/${n}`));
        }
        const at = target.indexOf('@');
        const name = at < 0 ? target : target.slice(0, at);
        const ref = at < 0 ? undefined : target.slice(at + 1);
        const b = await api.json<BuildJson>('POST', '/api/v1/builds', {
          source: name,
          ref,
          priority: o.priority === undefined ? undefined : Number(o.priority),
          arches: o.arch,
          repo: o.repo,
        });
        if (!o.wait) {
          if (o.json) return printJson(b);
          process.stdout.write(
            `build ${b.id}: ${b.package}-${b.evr} from ${b.source}@${b.commit.slice(0, 12)} queued\n`,
          );
          return;
        }
        process.stderr.write(`build ${b.id}: ${b.package}-${b.evr} from ${b.source}@${b.commit.slice(0, 12)}\n`);
        const done = await waitForBuild(api, b.id, (line) => process.stderr.write(`${line}\n`));
        if (o.json) printJson(done);
        else printBuild(done);
        if (done.state !== 'succeeded') state.code = 1;
      },
    );

  p.command('builds')
    .description('list builds, newest first')
    .option('--source <name>')
    .option('--state <state>')
    .option('--limit <n>', 'how many', '30')
    .option('--json', 'print JSON')
    .action(async (o: { source?: string; state?: string; limit: string; json?: boolean }, cmd: Command) => {
      const q = new URLSearchParams({
        limit: o.limit,
        ...(o.source ? { source: o.source } : {}),
        ...(o.state ? { state: o.state } : {}),
      });
      const { builds } = await (await client(cmd)).json<{ builds: BuildJson[] }>('GET', `/api/v1/builds?${q}`);
      if (o.json) return printJson(builds);
      process.stdout.write(
        `${table(
          builds.map((b) => [
            b.id,
            b.source,
            `${b.package}-${b.evr}`,
            b.commit.slice(0, 12),
            b.state,
            ago(b.createdAt),
            duration(b.startedAt, b.finishedAt),
          ]),
          ['ID', 'SOURCE', 'PACKAGE', 'COMMIT', 'STATE', 'CREATED', 'TOOK'],
        )}\n`,
      );
    });

  p.command('logs <task>')
    .description('print a task log; --follow streams it live until the task ends')
    .option('-f, --follow', 'follow the log live', false)
    .action(async (task: string, o: { follow: boolean }, cmd: Command) => {
      const api = await client(cmd);
      const n = Number(task);
      if (!Number.isInteger(n) || n <= 0) throw new LenixError('BAD_REQUEST', 'a task id is a positive integer');
      if (o.follow) {
        await followLog(api, n, (t) => process.stdout.write(t));
        return;
      }
      const res = await api.request('GET', `/api/v1/tasks/${n}/log`);
      process.stdout.write(Buffer.from(await res.arrayBuffer()));
    });

  p.command('agents')
    .description('list registered agents')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { agents } = await (await client(cmd)).json<{ agents: AgentJson[] }>('GET', '/api/v1/agents');
      if (o.json) return printJson(agents);
      process.stdout.write(
        `${table(
          agents.map((a) => [
            a.id,
            a.name,
            a.role,
            a.arches.join(','),
            a.online ? 'online' : 'offline',
            ago(a.lastSeenAt),
          ]),
          ['ID', 'NAME', 'ROLE', 'ARCHES', 'STATE', 'SEEN'],
        )}\n`,
      );
    });

  p.command('lookaside')
    .description('the lookaside area for source tarballs kept out of git')
    .command('upload <file>')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      await stat(file);
      const res = await api.request('PUT', `/api/v1/lookaside?name=${encodeURIComponent(path.basename(file))}`, {
        body: createReadStream(file),
      });
      const r = (await res.json()) as { sha256: string; size: number; metadataLine: string };
      if (o.json) return printJson(r);
      process.stdout.write(`${r.sha256}  ${r.size} bytes\nadd this line to .NAME.metadata:\n${r.metadataLine}\n`);
    });

  const token = p.command('token').description('API tokens (admin)');
  token
    .command('create <name>')
    .addOption(
      new Option('--scope <scope>', 'scope (repeatable)')
        .choices(['admin', 'maintainer', 'agent:build', 'agent:sign', 'agent:test'])
        .argParser(collect),
    )
    .option('--expires-days <n>', 'refuse the token after this many days')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { scope?: string[]; expiresDays?: string; json?: boolean }, cmd: Command) => {
      const expiresInDays = o.expiresDays === undefined ? undefined : Number(o.expiresDays);
      const r = await (await client(cmd)).json<{ id: number; token: string; scopes: string[] }>(
        'POST',
        '/api/v1/tokens',
        { name, scopes: o.scope ?? ['maintainer'], expiresInDays },
      );
      if (o.json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
    });
  token
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await (await client(cmd)).json<{ tokens: TokenJson[] }>('GET', '/api/v1/tokens');
      if (o.json) return printJson(r);
      const state = (t: TokenJson) =>
        t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt ? `expires ${t.expiresAt}` : 'active';
      process.stdout.write(
        `${table(
          r.tokens.map((t) => [String(t.id), t.name, t.scopes.join(','), t.createdAt, state(t)]),
          ['ID', 'NAME', 'SCOPES', 'CREATED', 'STATE'],
        )}\n`,
      );
    });
  token
    .command('revoke <id>')
    .description('revoke a token at once; agents holding it lose their leases')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      if (!/^\d+$/.test(id)) throw new LenixError('BAD_REQUEST', 'give the token id (lenix token list)');
      const r = await (await client(cmd)).json<TokenJson>('DELETE', `/api/v1/tokens/${id}`);
      if (o.json) return printJson(r);
      process.stdout.write(`token ${r.id} (${r.name}) revoked ${r.revokedAt}\n`);
    });

  addReleaseCommands(p, state);
  addFsckCommand(p, state);
  addVerifyCommand(p);
  addSbomCommand(p);
  addErrataCommands(p);
  addLedgerCommands(p, waitForSignal);
  return p;
}

interface TokenJson {
  readonly id: number;
  readonly name: string;
  readonly scopes: string[];
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

function printBuild(b: BuildJson): void {
  const out: string[] = [];
  out.push(`build ${b.id}  ${b.package}-${b.evr}  ${b.state}${b.reason ? `  (${b.reasonCode}: ${b.reason})` : ''}`);
  out.push(`source ${b.source}@${b.ref}  commit ${b.commit}  tree ${b.tree}`);
  out.push(`created ${b.createdAt} by ${b.createdBy}, took ${duration(b.startedAt, b.finishedAt)}`);
  for (const t of b.tasks ?? []) {
    out.push(
      `  task ${t.id}  ${t.kind === 'srpm' ? 'srpm' : t.arch}  ${t.state}  attempts ${t.attempts}/${t.maxAttempts}  ${duration(t.startedAt, t.finishedAt)}${t.reason ? `  ${t.reasonCode}: ${t.reason}` : ''}`,
    );
    for (const a of t.artifacts) out.push(`    ${a.name}  sha256:${a.sha256}  ${a.size} bytes`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Poll the build until it ends, reporting each task's state change once. */
export async function waitForBuild(api: ApiClient, id: number, progress: (line: string) => void): Promise<BuildJson> {
  const seen = new Map<number, string>();
  for (;;) {
    const b = await api.json<BuildJson>('GET', `/api/v1/builds/${id}`);
    for (const t of b.tasks ?? []) {
      if (seen.get(t.id) !== t.state) {
        seen.set(t.id, t.state);
        progress(
          `  task ${t.id} ${t.kind === 'srpm' ? 'srpm' : t.arch}: ${t.state}${t.reason && t.state !== 'leased' ? ` (${t.reasonCode}: ${t.reason})` : ''}`,
        );
      }
    }
    if (b.state === 'succeeded' || b.state === 'failed' || b.state === 'cancelled') return b;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** Run the CLI; returns the exit code. Errors print one line: `lenix: CODE: reason`. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const state = { code: 0 };
    await program(state).parseAsync([...argv]);
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof LenixError) {
      process.stderr.write(`lenix: ${err.code}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`lenix: INTERNAL: ${(err as Error).message}\n`);
    return 7;
  }
}
