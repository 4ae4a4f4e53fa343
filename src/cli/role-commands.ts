import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { LenixError } from '../core/errors.js';
import { hostArch } from '../rpm/arch.js';
import { DEFAULT_CONFIG } from '../server/context.js';
import { agentStart } from './config.js';
import { collect } from './output.js';
import { addLimitOptions, type LimitFlags, limitsFrom } from './sandbox-options.js';
import { runUp } from './up.js';
import { waitForSignal } from './signals.js';

interface Global {
  server?: string;
  token?: string;
}

/** The roles this binary runs: `lenix up` (all in one), `lenix server`, `lenix node` (signer and tester: release-commands). */
export function addRoleCommands(p: Command): void {
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
      '--arches <list>',
      "architectures to build, comma-separated (default: this host's); others get an emulated system root and node",
    )
    .option(
      '--roots <dir>',
      'where --arches keeps its system roots (open to the sandbox user)',
      '/var/cache/lenix/roots',
    )
    .option(
      '--prune-keep-days <n>',
      'prune by policy every hour: snapshots and unreferenced artifacts older than N days',
    )
    .option('--prune-keep-builds <n>', "with --prune-keep-days: keep each source's newest N builds", '3')
    .option(
      '--mirror-check <minutes>',
      "how often the checker fetches every mirror's repomd.xml (0: only `lenix mirror check`)",
      String(DEFAULT_CONFIG.mirrorCheckMs / 60_000),
    )
    .option(
      '--local-source-root <dir>',
      'a folder local sources may come from (repeatable; your home folder and the samples always may)',
      collect,
    )
    .action(
      async (o: {
        data: string;
        port: string;
        samples: boolean;
        localSourceRoot?: string[];
        arches?: string;
        roots: string;
      }) => {
        await runUp({
          rootsDir: path.resolve(o.roots),
          ...(o.arches
            ? {
                arches: o.arches
                  .split(',')
                  .map((a) => a.trim())
                  .filter(Boolean),
              }
            : {}),
          dataDir: path.resolve(o.data),
          port: Number(o.port),
          samples: o.samples,
          localSourceRoots: (o.localSourceRoot ?? []).map((d) => path.resolve(d)),
        });
      },
    );

  p.command('server')
    .description('run the Master Service API')
    .option('--data <dir>', 'data folder (database, blobs, git mirrors)', './lenix-data/server')
    .option('--database <url>', 'postgres://… for PostgreSQL; default SQLite at DATA/lenix.db')
    .option(
      '--database-read-url <url>',
      'postgres://… of a streaming replica for public reads (writers read their own writes from the primary)',
    )
    .option(
      '--blobs <url>',
      's3://BUCKET[/PREFIX]?endpoint=URL for an S3 store (keys from LENIX_S3_ACCESS_KEY_ID/LENIX_S3_SECRET_ACCESS_KEY), or a folder; default DATA/blobs',
    )
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', '8080')
    .option('--no-migrate', 'do not migrate the database at start; refuse an outdated one (run `lenix migrate`)')
    .option(
      '--ledger-keys <dir>',
      "the ledger's signing keys (default DATA/ledger; the same on every server of one log)",
    )
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
      '--metalink-grace <minutes>',
      "how long a repository's previous metadata stays acceptable in its metalinks (mirrors still syncing)",
      String(DEFAULT_CONFIG.metalinkGraceMs / 60_000),
    )
    .option(
      '--mirror-check <minutes>',
      "how often the checker fetches every mirror's repomd.xml (0: only `lenix mirror check`)",
      String(DEFAULT_CONFIG.mirrorCheckMs / 60_000),
    )
    .option(
      '--local-source-root <dir>',
      'a folder on this machine that sources may be mirrored from (repeatable; none by default)',
      collect,
    )
    .action(
      async (o: {
        data: string;
        database?: string;
        databaseReadUrl?: string;
        blobs?: string;
        ledgerKeys?: string;
        migrate: boolean;
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
        metalinkGrace: string;
        mirrorCheck: string;
        pruneKeepDays?: string;
        pruneKeepBuilds: string;
        localSourceRoot?: string[];
      }) => {
        const specTimeout = Number(o.specTimeout);
        const maxLog = Number(o.maxLog);
        if (!(specTimeout >= 1) || !(maxLog >= 1))
          throw new LenixError('BAD_REQUEST', '--spec-timeout and --max-log must be numbers ≥ 1');
        const metalinkGrace = Number(o.metalinkGrace);
        const mirrorCheck = Number(o.mirrorCheck);
        const prune =
          o.pruneKeepDays === undefined
            ? null
            : { keepDays: Number(o.pruneKeepDays), keepBuilds: Number(o.pruneKeepBuilds) };
        if (
          prune &&
          !(
            Number.isInteger(prune.keepDays) &&
            prune.keepDays >= 0 &&
            Number.isInteger(prune.keepBuilds) &&
            prune.keepBuilds >= 0
          )
        )
          throw new LenixError('BAD_REQUEST', '--prune-keep-days and --prune-keep-builds must be whole numbers ≥ 0');
        if (!(metalinkGrace >= 0) || !(mirrorCheck >= 0))
          throw new LenixError('BAD_REQUEST', '--metalink-grace and --mirror-check must be numbers ≥ 0');
        // The server's and agents' modules load only for the command that runs them (CLI start-up stays small).
        const { startServer } = await import('../server/main.js');
        const server = await startServer({
          dataDir: path.resolve(o.data),
          database: o.database ?? process.env['LENIX_DATABASE'],
          databaseRead: o.databaseReadUrl ?? process.env['LENIX_DATABASE_READ'],
          blobs: o.blobs ?? process.env['LENIX_BLOBS'],
          migrate: o.migrate,
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
            metalinkGraceMs: Math.round(metalinkGrace * 60_000),
            mirrorCheckMs: Math.round(mirrorCheck * 60_000),
            prune,
            localSourceRoots: (o.localSourceRoot ?? []).map((d) => path.resolve(d)),
            ...(o.ledgerKeys ? { ledgerKeysDir: path.resolve(o.ledgerKeys) } : {}),
          },
        });
        process.stdout.write(`lenix server listening on ${server.url}\n`);
        await waitForSignal();
        await server.close();
      },
    );

  const node = addLimitOptions(
    p
      .command('node')
      .description('run a build node: lease build tasks and run rpmbuild in a sandbox')
      .option('--token-file <file>', 'read the agent token from a file')
      .option('--arch <arch>', "architecture to build (repeatable; default: this host's)", collect)
      .option(
        '--root <dir>',
        "build in this system root (lenix node root create) instead of the host's /usr: its arch only, emulated when foreign",
      )
      .option('--name <name>', 'node name', `${os.hostname()}`)
      .option('--work <dir>', 'work folder', path.join(os.tmpdir(), 'lenix-node')),
    { timeoutSeconds: 7200 },
  ).action(
    async (
      o: LimitFlags & { tokenFile?: string; arch?: string[]; root?: string; name: string; work: string },
      cmd: Command,
    ) => {
      const limits = limitsFrom(o);
      const [{ resolveSandboxIdentity }, { runBuildNode }, { AgentClient }, { default: pino }, { openSystemRoot }] =
        await Promise.all([
          import('../rpm/sandbox-identity.js'),
          import('../agents/builder/build-node.js'),
          import('../client/agent.js'),
          import('pino'),
          import('../agents/kit/system-root.js'),
        ]);
      const systemRoot = o.root ? await openSystemRoot(o.root) : undefined;
      if (systemRoot && o.arch?.some((a) => a !== systemRoot.info.arch))
        throw new LenixError(
          'BAD_REQUEST',
          `--arch ${o.arch.join(',')} does not match the root's arch ${systemRoot.info.arch} (a root builds its own arch only)`,
        );
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
        arches: systemRoot ? [systemRoot.info.arch] : o.arch && o.arch.length > 0 ? o.arch : [hostArch()],
        workRoot: path.resolve(o.work),
        identity,
        limits,
        log: pino({ level: process.env['LENIX_LOG_LEVEL'] ?? 'info', base: { role: 'node', node: o.name } }),
        stop,
        ...(systemRoot ? { systemRoot } : {}),
      });
    },
  );

  node
    .command('root')
    .description('system roots for build nodes and testers (another architecture through qemu-user)')
    .command('create')
    .description('make a system root: Debian by debootstrap with rpm, gcc and make (needs root; emulated: minutes)')
    .option('--arch <arch>', 'architecture of the root (x86_64, aarch64, ppc64le, s390x)')
    .option('--mirror <url>', 'Debian mirror (default http://deb.debian.org/debian)')
    .argument('<dir>', 'folder for the root (made; must not exist or be empty)')
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      // commander hands `--arch` to `lenix node` (whose option it also is): read it from there.
      const o = cmd.optsWithGlobals<{ arch?: string | string[]; mirror?: string }>();
      const arches = [o.arch ?? []].flat();
      if (arches.length !== 1) throw new LenixError('BAD_REQUEST', "name the root's architecture once: --arch ARCH");
      const { createSystemRoot } = await import('../agents/kit/system-root-create.js');
      await createSystemRoot({
        arch: arches[0]!,
        dir,
        ...(o.mirror ? { mirror: o.mirror } : {}),
        say: (line) => process.stderr.write(`lenix: ${line}\n`),
      });
      process.stdout.write(`${path.resolve(dir)}\n`);
    });
}
