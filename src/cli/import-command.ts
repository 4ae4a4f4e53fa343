import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ImportJson } from '../client/lenix.js';
import { apiClientFor } from './config.js';
import { printJson } from './output.js';

/** `lenix import FILE.rpm ... --to REPO [--key FPR] [--allow-unsigned]` (issue 14). */
export function addImportCommand(p: Command, state: { code: number }): void {
  p.command('import <files...>')
    .description(
      'import RPMs built elsewhere (bootstrap, upstream) into a repository: signatures checked against --key, then released',
    )
    .requiredOption(
      '--to <repo>',
      'the repository they go into (a build repository makes them available to buildroots)',
    )
    .option('--key <fingerprint>', 'the key they must be signed with (one the server knows: lenix keys add)')
    .option('--allow-unsigned', 'accept packages without any signature (recorded as such)', false)
    .option('--wait', 'wait until the release is published', false)
    .option('--json', 'print JSON')
    .action(
      async (
        files: string[],
        o: { to: string; key?: string; allowUnsigned: boolean; wait: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const api = await apiClientFor(cmd);
        const imported: ImportJson[] = [];
        for (const f of files) {
          const i = await api.imports.upload(path.basename(f), createReadStream(f), {
            repo: o.to,
            key: o.key,
            allowUnsigned: o.allowUnsigned,
          });
          imported.push(i);
          if (!o.json)
            process.stderr.write(
              `imported ${i.name} sha256 ${i.sha256} (${'key' in i.signature ? `signed by ${i.signature.key}` : 'unsigned'})\n`,
            );
        }
        const binaries = imported.filter((i) => i.kind === 'rpm').map((i) => i.id);
        let release = binaries.length
          ? await api.releases.create({ repo: o.to, builds: [], imports: binaries, approve: true })
          : null;
        if (release && o.wait) release = await api.releases.wait(release.id);
        if (o.json) return printJson({ imports: imported, release });
        if (release) process.stdout.write(`release ${release.id} into ${o.to}: ${release.state}\n`);
        if (release && o.wait && release.state !== 'published') state.code = 1;
      },
    );
}
