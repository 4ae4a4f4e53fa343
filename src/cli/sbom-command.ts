import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { sha256File } from '../store/durable.js';
import { SBOM_FORMATS } from '../attest/sbom.js';
import { LenixError } from '../core/errors.js';
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
      let path: string;
      const build = /^build:(\d+)$/.exec(target);
      const repo = /^repo:([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?:@(\d+|current))?$/.exec(target);
      if (build) path = `/api/v1/builds/${build[1]}/sbom`;
      else if (repo) path = `/api/v1/repos/${repo[1]}/snapshots/${repo[2] ?? 'current'}/sbom`;
      else if (/^[0-9a-f]{64}$/.test(target)) path = `/api/v1/artifacts/${target}/sbom`;
      else {
        const digest = await sha256File(target).catch(() => {
          throw new LenixError(
            'NOT_FOUND',
            `cannot read ${target} (give build:ID, repo:NAME[@ID], a sha256 or an RPM file)`,
          );
        });
        path = `/api/v1/artifacts/${digest}/sbom`;
      }
      const res = await (await apiClientFor(cmd)).request('GET', `${path}?format=${o.format}`);
      const body = await res.text();
      if (!o.output) return void process.stdout.write(body);
      await writeFile(o.output, body);
      process.stderr.write(
        `wrote ${o.output} (sha256 ${res.headers.get('x-lenix-sbom-sha256')}, ledger entry ${res.headers.get('x-lenix-ledger-entry')})\n`,
      );
    });
}
