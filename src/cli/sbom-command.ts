import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { sha256File } from '../store/durable.js';
import { SBOM_FORMATS } from '../core/sbom-formats.js';
import { LenixError } from '../core/errors.js';
import type { SbomTarget } from '../client/lenix.js';
import { apiClientFor } from './config.js';

/** `lenix sbom build:ID | FILE.rpm | SHA256 | repo:NAME[@SNAPSHOT] --format F [--output FILE]` */
export function addSbomCommand(p: Command): void {
  p.command('sbom <target>')
    .description(
      'download the SBOM of a build, a package (file or sha256) or a repository snapshot (repo:NAME, repo:NAME@ID)',
    )
    .addOption(new Option('--format <format>', 'document format').choices([...SBOM_FORMATS]).default('cyclonedx-json'))
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .action(async (target: string, o: { format: string; output?: string }, cmd: Command) => {
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
    });
}
