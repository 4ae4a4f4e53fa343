import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { LenixError } from '../core/errors.js';
import { apiClientFor } from './config.js';
import { collect, printJson } from './output.js';

/** `lenix witness` (a C2SP tlog-witness) and `lenix ledger witnesses list|add|remove`. */
export function addLedgerCommands(p: Command, waitForSignal: () => Promise<void>): void {
  p.command('witness')
    .description(
      "run a transparency-log witness: cosign the ledger's checkpoints, refusing any that contradict one it cosigned",
    )
    .option('--log <url>', "the log's server URL; the witness also checks the checkpoint it serves to everyone")
    .option('--log-key <key>', 'a trusted log key (name+hash+base64; repeatable; the name is the log origin)', collect)
    .option(
      '--key <dir>',
      "the witness's folder: its keys and the last checkpoint it cosigned per log",
      path.join(os.homedir(), '.local', 'share', 'lenix-witness'),
    )
    .option('--name <name>', "the witness's key name", 'lenix.local/witness')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0 picks a free port)', '8090')
    .option('--poll-seconds <n>', "how often to read the log's published checkpoint (0: never)", '10')
    .action(
      async (o: {
        log?: string;
        logKey?: string[];
        key: string;
        name: string;
        host: string;
        port: string;
        pollSeconds: string;
      }) => {
        if (!o.logKey || o.logKey.length === 0)
          throw new LenixError('BAD_REQUEST', 'give the log key to trust with --log-key (served at LOG/ledger/keys)');
        const [{ startWitness }, { default: pino }] = await Promise.all([
          import('../agents/witness/witness.js'),
          import('pino'),
        ]);
        const w = await startWitness({
          dir: path.resolve(o.key),
          name: o.name,
          logKeys: o.logKey,
          ...(o.log ? { logUrl: o.log } : {}),
          pollMs: Number(o.pollSeconds) * 1000,
          host: o.host,
          port: Number(o.port),
          log: pino({ level: process.env['LENIX_LOG_LEVEL'] ?? 'info', base: { role: 'witness' } }),
        });
        process.stdout.write(
          `lenix witness listening on ${w.url}\n${w.verifierKeys.map((k) => `  witness key: ${k.length > 120 ? `${k.slice(0, 60)}… (GET ${w.url}/key)` : k}\n`).join('')}`,
        );
        await waitForSignal();
        await w.close();
      },
    );

  const witnesses = p
    .command('ledger')
    .description('the transparency ledger')
    .command('witnesses')
    .description("witnesses that cosign the ledger's checkpoints");
  witnesses
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = await (await apiClientFor(cmd)).ledger.witnesses.list();
      if (o.json) return printJson(r);
      process.stdout.write(r.witnesses.map((w) => `${w}\n`).join(''));
    });
  witnesses
    .command('add <url>')
    .description('ask this witness to cosign every new checkpoint (admin)')
    .action(async (url: string, _o: unknown, cmd: Command) => {
      await (await apiClientFor(cmd)).ledger.witnesses.add(url);
      process.stdout.write(`witness ${url} added\n`);
    });
  witnesses.command('remove <url>').action(async (url: string, _o: unknown, cmd: Command) => {
    await (await apiClientFor(cmd)).ledger.witnesses.remove(url);
    process.stdout.write(`witness ${url} removed\n`);
  });
}
