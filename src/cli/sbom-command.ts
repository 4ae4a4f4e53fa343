import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { sha256File } from '../store/durable.js';
import { SBOM_FORMATS } from '../core/sbom-formats.js';
import { LenixError } from '../core/errors.js';
import type { SbomTarget } from '../client/lenix.js';
import { apiClientFor } from './config.js';
import { collect } from './output.js';

/**
 * `lenix sbom build:ID | FILE.rpm | SHA256 | repo:NAME[@SNAPSHOT] --format F [--output FILE]`, and
 * `lenix sbom --installed [--root DIR] [--proofs DIR] --log-key KEY`: the SBOM of an installed system.
 */
export function addSbomCommand(p: Command): void {
  p.command('sbom [target]')
    .description(
      'download the SBOM of a build, a package (file or sha256) or a repository snapshot (repo:NAME, repo:NAME@ID), or make the SBOM of an installed system (--installed)',
    )
    .addOption(new Option('--format <format>', 'document format').choices([...SBOM_FORMATS]).default('cyclonedx-json'))
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .option('--installed', "the SBOM of this machine's installed packages (or --root DIR), with Lenix provenance")
    .option('--root <dir>', 'with --installed: the root whose rpm database is read (default /)')
    .option('--proofs <dir>', 'with --installed: prove provenance offline from the proof bundles in DIR')
    .option('--log-key <key>', 'with --installed: the pinned ledger key (or $LENIX_LOG_KEY)', collect)
    .action(
      async (
        target: string | undefined,
        o: { format: string; output?: string; installed?: boolean; root?: string; proofs?: string; logKey?: string[] },
        cmd: Command,
      ) => {
        if (o.installed) return installedSbom(cmd, o);
        if (!target)
          throw new LenixError('BAD_REQUEST', 'give build:ID, repo:NAME[@ID], a sha256, an RPM file or --installed');
        let what: SbomTarget;
        const build = /^build:(\d+)$/.exec(target);
        const repo = /^repo:([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?:@(\d+|current))?$/.exec(target);
        if (build) what = { build: Number(build[1]) };
        else if (repo) what = { repo: repo[1]!, snapshot: repo[2] ?? 'current' };
        else if (/^[0-9a-f]{64}$/.test(target)) what = { artifact: target };
        else {
          const digest = await sha256File(target).catch(() => {
            throw new LenixError(
              'NOT_FOUND',
              `cannot read ${target} (give build:ID, repo:NAME[@ID], a sha256 or an RPM file)`,
            );
          });
          what = { artifact: digest };
        }
        const res = await (await apiClientFor(cmd)).sbom(what, o.format);
        const body = await res.text();
        if (!o.output) return void process.stdout.write(body);
        await writeFile(o.output, body);
        process.stderr.write(
          `wrote ${o.output} (sha256 ${res.headers.get('x-lenix-sbom-sha256')}, ledger entry ${res.headers.get('x-lenix-ledger-entry')})\n`,
        );
      },
    );
}

async function installedSbom(
  cmd: Command,
  o: { format: string; output?: string; root?: string; proofs?: string; logKey?: string[] },
): Promise<void> {
  if (o.format !== 'cyclonedx-json' && o.format !== 'spdx-json')
    throw new LenixError('BAD_REQUEST', 'the SBOM of an installed system is cyclonedx-json or spdx-json');
  const [{ pins }, { scanInstalled }, sbom, { LENIX_VERSION }] = await Promise.all([
    import('./pins.js'),
    import('./verify-installed.js'),
    import('../attest/installed-sbom.js'),
    import('../core/version.js'),
  ]);
  const results = await scanInstalled(cmd, [], await pins(o), {
    root: o.root ?? '/',
    ...(o.proofs ? { proofs: o.proofs } : {}),
  });
  const input = {
    toolVersion: LENIX_VERSION,
    packages: results.map((r) => ({ ...r.package, verdict: r.verdict, provenance: r.provenance })),
  };
  const body = o.format === 'spdx-json' ? sbom.installedSpdxJson(input) : sbom.installedCyclonedxJson(input);
  if (!o.output) return void process.stdout.write(body);
  await writeFile(o.output, body);
  const lenix = results.filter((r) => r.provenance).length;
  process.stderr.write(`wrote ${o.output}: ${results.length} packages, ${lenix} proven from this Lenix\n`);
}
