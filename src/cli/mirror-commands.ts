import type { Command } from 'commander';
import { LenixError } from '../core/errors.js';
import { apiClientFor as client } from './config.js';
import { printJson, table } from './output.js';

/** The mirror registry: `lenix mirror add|list|show|remove`. */
export function addMirrorCommands(p: Command): void {
  const mirror = p
    .command('mirror')
    .description('mirrors that copy the published trees (rsync); the metalinks list them for dnf');
  mirror
    .command('add <url>')
    .description('register a mirror: its base URL, under which repositories appear as NAME/ARCH/')
    .option('--rsync <url>', 'its rsync URL')
    .option('--country <cc>', 'ISO 3166 country code (the metalink location)')
    .option('--contact <text>', 'who runs it')
    .option('--json', 'print JSON')
    .action(
      async (url: string, o: { rsync?: string; country?: string; contact?: string; json?: boolean }, cmd: Command) => {
        const m = await (await client(cmd)).mirrors.add({
          url,
          ...(o.rsync ? { rsyncUrl: o.rsync } : {}),
          ...(o.country ? { country: o.country } : {}),
          ...(o.contact ? { contact: o.contact } : {}),
        });
        if (o.json) return printJson(m);
        process.stdout.write(`mirror ${m.url} registered\n`);
      },
    );
  mirror
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await (await client(cmd)).mirrors.list();
      if (o.json) return printJson(r);
      process.stdout.write(
        `${table(
          r.mirrors.map((m) => [m.url, m.rsyncUrl ?? '-', m.country ?? '-', m.contact ?? '-']),
          ['URL', 'RSYNC', 'COUNTRY', 'CONTACT'],
        )}\n`,
      );
    });
  mirror
    .command('show <url>')
    .option('--json', 'print JSON')
    .action(async (url: string, o: { json?: boolean }, cmd: Command) => {
      const base = `${url.replace(/\/+$/, '')}/`;
      const m = (await (await client(cmd)).mirrors.list()).mirrors.find((x) => x.url === base);
      if (!m) throw new LenixError('MIRROR_NOT_FOUND', `no mirror ${base.slice(0, 200)}`);
      if (o.json) return printJson(m);
      process.stdout.write(
        `${m.url}\n  rsync: ${m.rsyncUrl ?? '-'}\n  country: ${m.country ?? '-'}\n  contact: ${m.contact ?? '-'}\n  registered: ${new Date(m.createdAt).toISOString()}\n`,
      );
    });
  mirror.command('remove <url>').action(async (url: string, _o: unknown, cmd: Command) => {
    await (await client(cmd)).mirrors.remove(url);
    process.stdout.write(`mirror ${url} removed\n`);
  });
}
