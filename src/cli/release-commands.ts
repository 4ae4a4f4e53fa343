import { hostArch } from '../rpm/arch.js';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { LenixError } from '../core/errors.js';
import { exportPublicKey, generateKey, listSecretKeys } from '../crypto/gpg.js';
import type { ReleaseJson } from '../client/lenix.js';
import { agentStart, apiClientFor } from './config.js';
import { ago, collect, printJson, table } from './output.js';
import { addLimitOptions, limitsFrom, type LimitFlags } from './sandbox-options.js';

interface Global {
  server?: string;
  token?: string;
}

const client = apiClientFor;

const RPMLINT_CONFIG = fileURLToPath(new URL('../../../config/rpmlint-lenix.toml', import.meta.url));
export const DEFAULT_KEYS_DIR = path.join(os.homedir(), '.local', 'share', 'lenix-signer', 'gnupg');

/** `lenix signer`, `lenix keys`, `lenix repo`, `lenix release`, `lenix releases` (issue 3). */
export function addReleaseCommands(p: Command, state: { code: number }): void {
  p.command('signer')
    .description('run the sign server: the only holder of private keys; signs packages and repository metadata')
    .option('--keys <dir>', 'GnuPG home with the private keys', DEFAULT_KEYS_DIR)
    .option('--token-file <file>', 'read the agent token (scope agent:sign) from a file')
    .option('--name <name>', 'signer name', `signer-${os.hostname()}`)
    .option('--work <dir>', 'work folder', path.join(os.tmpdir(), 'lenix-signer'))
    .action(async (o: { keys: string; tokenFile?: string; name: string; work: string }, cmd: Command) => {
      const { api, stop } = await agentStart(
        cmd.optsWithGlobals<Global>(),
        o.tokenFile,
        'the signer (scope agent:sign)',
      );
      await mkdir(o.work, { recursive: true, mode: 0o700 });
      const [{ runSigner }, { AgentClient }, { default: pino }] = await Promise.all([
        import('../agents/sign/signer.js'),
        import('../client/agent.js'),
        import('pino'),
      ]);
      await runSigner({
        client: new AgentClient(api),
        api,
        name: o.name,
        keysDir: path.resolve(o.keys),
        workRoot: path.resolve(o.work),
        log: pino({ level: process.env['LENIX_LOG_LEVEL'] ?? 'info', base: { role: 'signer' } }),
        stop,
      });
    });

  addLimitOptions(
    p
      .command('tester')
      .description('run the test system: install, verify, remove, rpmlint and package tests for signed builds')
      .option('--token-file <file>', 'read the agent token (scope agent:test) from a file')
      .option('--name <name>', 'tester name', `tester-${os.hostname()}`)
      .option('--work <dir>', 'work folder', path.join(os.tmpdir(), 'lenix-tester'))
      .option('--rpmlint-config <file>', 'rpmlint configuration', RPMLINT_CONFIG)
      .option('--jobs <n>', 'test runs at once', '1')
      .option(
        '--root <dir>',
        'a system root of another architecture (lenix node root create): its packages are tested in it, emulated (repeatable)',
        collect,
      ),
    { timeoutSeconds: 3600 },
  ).action(
    async (
      o: LimitFlags & {
        tokenFile?: string;
        name: string;
        work: string;
        rpmlintConfig: string;
        jobs: string;
        root?: string[];
      },
      cmd: Command,
    ) => {
      const limits = limitsFrom(o);
      const [{ resolveSandboxIdentity }, { runTester }, { AgentClient }, { default: pino }, { openSystemRoot }] =
        await Promise.all([
          import('../rpm/sandbox-identity.js'),
          import('../agents/tester/tester.js'),
          import('../client/agent.js'),
          import('pino'),
          import('../agents/kit/system-root.js'),
        ]);
      const systemRoots = await Promise.all((o.root ?? []).map((d) => openSystemRoot(d)));
      const identity = await resolveSandboxIdentity();
      const { api, stop } = await agentStart(
        cmd.optsWithGlobals<Global>(),
        o.tokenFile,
        'the tester (scope agent:test)',
      );
      await runTester({
        client: new AgentClient(api),
        api,
        name: o.name,
        workRoot: path.resolve(o.work),
        identity,
        limits,
        rpmlintConfig: path.resolve(o.rpmlintConfig),
        jobs: Number(o.jobs),
        systemRoots,
        log: pino({ level: process.env['LENIX_LOG_LEVEL'] ?? 'info', base: { role: 'tester' } }),
        stop,
      });
    },
  );

  const keys = p.command('keys').description("OpenPGP signing keys (private ones live only in the signer's folder)");
  keys
    .command('generate <name>')
    .option('--keys <dir>', "the signer's GnuPG home", DEFAULT_KEYS_DIR)
    .option('--algo <algo>', 'rsa4096 (EL8/EL9 rpm) or ed25519', 'rsa4096')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { keys: string; algo: string; json?: boolean }) => {
      if (o.algo !== 'rsa4096' && o.algo !== 'ed25519')
        throw new LenixError('BAD_REQUEST', '--algo is rsa4096 or ed25519');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name))
        throw new LenixError('INVALID_NAME', 'key name must be a plain word');
      const k = await generateKey(path.resolve(o.keys), name, o.algo);
      if (o.json) return printJson(k);
      process.stdout.write(`${k.fingerprint}  ${k.algorithm}  ${k.name}\n`);
    });
  keys
    .command('add <file>')
    .description('tell the server a public key that imported packages are checked against (lenix import --key)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }, cmd: Command) => {
      const k = await (await client(cmd)).keys.add(await readFile(path.resolve(file), 'utf8'), 'verify');
      if (o.json) return printJson(k);
      process.stdout.write(`${k.fingerprint}  ${k.algorithm}  ${k.name}\n`);
    });
  keys
    .command('list')
    .description('keys in a local key folder (--keys), or the public keys the server knows')
    .option('--keys <dir>', 'list the private keys in this GnuPG home instead of asking the server')
    .option('--json', 'print JSON')
    .action(async (o: { keys?: string; json?: boolean }, cmd: Command) => {
      if (o.keys) {
        const ks = await listSecretKeys(path.resolve(o.keys));
        if (o.json) return printJson(ks);
        process.stdout.write(
          `${table(
            ks.map((k) => [k.fingerprint, k.algorithm, k.name]),
            ['FINGERPRINT', 'ALGO', 'NAME'],
          )}\n`,
        );
        return;
      }
      const r = await (await client(cmd)).keys.list();
      if (o.json) return printJson(r);
      process.stdout.write(
        `${table(
          r.keys.map((k) => [
            k.fingerprint,
            k.algorithm,
            k.name,
            k.fingerprint === r.signingKey ? 'signs new builds' : '',
          ]),
          ['FINGERPRINT', 'ALGO', 'NAME', ''],
        )}\n`,
      );
    });
  keys
    .command('export <fingerprint>')
    .option('--keys <dir>', "the signer's GnuPG home", DEFAULT_KEYS_DIR)
    .action(async (fpr: string, o: { keys: string }) => {
      process.stdout.write(await exportPublicKey(path.resolve(o.keys), fpr));
    });
  keys
    .command('use <fingerprint>')
    .description('sign new builds with this key (admin)')
    .action(async (fpr: string, _o: unknown, cmd: Command) => {
      const r = await (await client(cmd)).keys.setSigning(fpr);
      process.stdout.write(`new builds are signed with ${r.signingKey}\n`);
    });

  const repo = p.command('repo').description('published repositories');
  repo
    .command('create <name>')
    .option('--arch <arch>', 'architecture (repeatable)', collect)
    .option('--key <fingerprint>', "signing key (repeatable; default: the server's signing key)", collect)
    .option('--keep-days <n>', 'keep old snapshots this long', '14')
    .option(
      '--keep-versions <n>',
      'versions of each package kept in the repository, newest first, for dnf downgrade (0: all)',
      '0',
    )
    .option('--vendor <ns>', "purl namespace of its packages in SBOMs (e.g. almalinux; default: the server's)")
    .option('--distro <id>', 'purl distro qualifier in SBOMs (e.g. almalinux-9)')
    .option('--errata-prefix <P>', "advisory id prefix: P gives PSA/PBA/PEA ids (default: the server's, LX)")
    .option(
      '--osv-ecosystem <E>',
      'registered OSV ecosystem for its OSV records (e.g. AlmaLinux:9); none: no OSV records',
    )
    .option('--follow <target>', 'follow the builds of a build target')
    .option('--auto-release', 'release each build of the followed target that passes the gates at once', false)
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        o: {
          arch?: string[];
          key?: string[];
          keepDays: string;
          keepVersions: string;
          vendor?: string;
          distro?: string;
          errataPrefix?: string;
          osvEcosystem?: string;
          follow?: string;
          autoRelease: boolean;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const r = await (await client(cmd)).repos.create({
          ...(o.follow ? { follow: o.follow } : {}),
          ...(o.autoRelease ? { autoRelease: true } : {}),
          name,
          arches: o.arch ?? [hostArch()],
          keys: o.key ?? [],
          keepDays: Number(o.keepDays),
          keepVersions: Number(o.keepVersions),
          ...(o.vendor ? { vendor: o.vendor } : {}),
          ...(o.distro ? { distro: o.distro } : {}),
          ...(o.errataPrefix ? { errataPrefix: o.errataPrefix } : {}),
          ...(o.osvEcosystem ? { osvEcosystem: o.osvEcosystem } : {}),
        });
        if (o.json) return printJson(r);
        process.stdout.write(
          `repository ${r.name} (${r.arches.join(', ')}) signed by ${r.keys.map((k) => k.fingerprint).join(', ')}\n`,
        );
      },
    );
  repo
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { repos } = await (await client(cmd)).repos.list();
      if (o.json) return printJson(repos);
      process.stdout.write(
        `${table(
          repos.map((r) => [
            r.name,
            r.arches.join(','),
            r.currentSnapshot,
            r.keys.filter((k) => !k.retiredAt).length,
            r.repoFile,
          ]),
          ['NAME', 'ARCHES', 'SNAPSHOT', 'KEYS', 'REPO FILE'],
        )}\n`,
      );
    });
  repo
    .command('show <name>')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      const r = await api.repos.get(name);
      if (o.json) return printJson(r);
      const out = [
        `repository ${r.name}  arches ${r.arches.join(', ')}  current snapshot ${r.currentSnapshot ?? '-'}`,
        `install: curl -o /etc/yum.repos.d/${r.name}.repo ${api.base}${r.repoFile}`,
      ];
      for (const k of r.keys) out.push(`  key ${k.fingerprint}${k.retiredAt ? ` (retired ${k.retiredAt})` : ''}`);
      for (const s of r.snapshots)
        out.push(
          `  snapshot ${s.id}  ${s.state}  ${s.packages.length} packages  ${s.publishedAt ?? ''}${s.id === r.currentSnapshot ? '  <- current' : ''}`,
        );
      process.stdout.write(`${out.join('\n')}\n`);
    });
  repo
    .command('keys <name>')
    .description('key rotation: --add a new key (listed in the .repo file at once), later --retire the old one')
    .option('--add <fingerprint>')
    .option('--retire <fingerprint>')
    .action(async (name: string, o: { add?: string; retire?: string }, cmd: Command) => {
      const r = await (await client(cmd)).repos.keys(name, { add: o.add, retire: o.retire });
      for (const k of r.keys) process.stdout.write(`${k.fingerprint}${k.retiredAt ? '  retired' : '  active'}\n`);
    });
  repo
    .command('rollback <name> [snapshot]')
    .action(async (name: string, snapshot: string | undefined, _o: unknown, cmd: Command) => {
      const r = await (await client(cmd)).repos.rollback(name, snapshot ? Number(snapshot) : undefined);
      process.stdout.write(`${name} now serves snapshot ${r.current}\n`);
    });

  repo
    .command('expire <name>')
    .description(
      "drop the repository's metalink alternates now: clients accept only the current metadata (after an urgent security release)",
    )
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const r = await (await client(cmd)).repos.expire(name);
      process.stdout.write(
        `${r.repo}: metalinks accept only the current snapshot (alternates through ${r.through} expired)\n`,
      );
    });

  repo
    .command('republish <name>')
    .description(
      'publish the current packages again with fresh metadata (e.g. advisories approved since their release)',
    )
    .option('--wait', 'wait until it is published', false)
    .option('--json', 'print JSON')
    .action(async (name: string, o: { wait: boolean; json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      let rel = await api.releases.create({ repo: name, builds: [], approve: true });
      if (o.wait) rel = await api.releases.wait(rel.id);
      if (o.json) printJson(rel);
      else printRelease(rel);
      if (o.wait && rel.state !== 'published') state.code = 1;
    });

  p.command('release <builds...>')
    .description(
      'release builds into a repository: `lenix release 12 13 --to REPO [--approve]`; `lenix release approve ID`',
    )
    .option('--to <repo>', 'target repository')
    .option('--approve', 'approve at once (publishing starts)', false)
    .option('--override <reason>', 'release despite failed tests, with a reason that is kept with the release')
    .option('--wait', 'wait until the release is published or fails', false)
    .option('--json', 'print JSON')
    .action(
      async (
        builds: string[],
        o: { to?: string; approve: boolean; override?: string; wait: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const api = await client(cmd);
        let rel: ReleaseJson;
        if (builds[0] === 'approve') {
          rel = await api.releases.approve(Number(builds[1]));
        } else {
          if (!o.to) throw new LenixError('BAD_REQUEST', 'lenix release needs --to REPO');
          const ids = builds.map(Number);
          if (ids.some((n) => !Number.isInteger(n) || n <= 0))
            throw new LenixError('BAD_REQUEST', 'build ids are positive integers');
          rel = await api.releases.create({
            repo: o.to,
            builds: ids,
            approve: o.approve,
            override: o.override,
          });
        }
        if (o.wait) rel = await api.releases.wait(rel.id);
        if (o.json) printJson(rel);
        else printRelease(rel);
        if (o.wait && rel.state !== 'published') state.code = 1;
      },
    );

  p.command('releases')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { releases } = await (await client(cmd)).releases.list();
      if (o.json) return printJson(releases);
      process.stdout.write(
        `${table(
          releases.map((r) => [
            r.id,
            r.repoId,
            r.builds.join(','),
            r.state,
            r.overrideReason ? `override: ${r.overrideReason}` : '',
            ago(r.createdAt),
          ]),
          ['ID', 'REPO', 'BUILDS', 'STATE', 'NOTE', 'CREATED'],
        )}\n`,
      );
    });
}

function printRelease(r: ReleaseJson): void {
  const plan = r.plan as {
    added?: { arch: string; nevra: string }[];
    replaced?: { from: { nevra: string }; to: { nevra: string; arch: string } }[];
    unchanged?: unknown[];
    unchangedCount?: number;
  };
  const out = [
    `release ${r.id}  builds ${r.builds.join(', ')}  ${r.state}${r.reason ? `  (${r.reasonCode}: ${r.reason})` : ''}`,
  ];
  if (r.overrideReason) out.push(`  override: ${r.overrideReason}`);
  for (const a of plan.added ?? []) out.push(`  + ${a.arch}/${a.nevra}`);
  for (const x of plan.replaced ?? []) out.push(`  ~ ${x.to.arch}/${x.from.nevra} -> ${x.to.nevra}`);
  const unchanged = plan.unchangedCount ?? (plan.unchanged ?? []).length;
  if (unchanged > 0) out.push(`  = ${unchanged} unchanged`);
  process.stdout.write(`${out.join('\n')}\n`);
}
