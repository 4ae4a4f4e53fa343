import { Option, type Command } from 'commander';
import type { TokenJson } from '../client/lenix.js';
import { LenixError } from '../core/errors.js';
import { apiClientFor as client } from './config.js';
import { collect, printJson, table } from './output.js';

/** API tokens (admin): `lenix token create|list|revoke`. */
export function addTokenCommands(p: Command): void {
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
      const r = await (await client(cmd)).tokens.create({ name, scopes: o.scope ?? ['maintainer'], expiresInDays });
      if (o.json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
    });
  token
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await (await client(cmd)).tokens.list();
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
      const r = await (await client(cmd)).tokens.revoke(Number(id));
      if (o.json) return printJson(r);
      process.stdout.write(`token ${r.id} (${r.name}) revoked ${r.revokedAt}\n`);
    });
}
