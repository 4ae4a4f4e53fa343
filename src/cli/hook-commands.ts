import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { LenixError } from '../core/errors.js';
import { hubSignature } from '../core/push-signature.js';
import { apiClientFor as client } from './config.js';
import { printJson } from './output.js';

/**
 * Push instead of polling: `lenix source hook NAME [--install GIT_DIR]` makes a source's webhook secret (for a
 * forge's webhook settings, or installed as a git post-receive hook), and `lenix hook post-receive` is that
 * hook: it reads git's `OLD NEW REF` lines and sends one signed push event per ref.
 */
export function addHookCommands(p: Command, source: Command): void {
  source
    .command('hook <name>')
    .description("make a new webhook secret for a source (the old one stops working) and print the hook's URL")
    .option('--install <git-dir>', 'install it as the post-receive hook of a local (bare) repository')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { install?: string; json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      const r = await api.sources.hookSecret(name);
      const url = `${api.base}${r.url}`;
      if (o.install) {
        // A bare repository keeps its hooks at its top; a working one under .git/.
        const gitDir = path.resolve(o.install);
        const dotGit = path.join(gitDir, '.git');
        const hooks = path.join((await stat(dotGit).catch(() => null))?.isDirectory() ? dotGit : gitDir, 'hooks');
        await mkdir(hooks, { recursive: true });
        const secretFile = path.join(hooks, 'lenix-hook-secret');
        await writeFile(secretFile, `${r.secret}\n`, { mode: 0o600 });
        await chmod(secretFile, 0o600);
        const self = [process.execPath, process.argv[1] ?? 'lenix'].map(shellQuote).join(' ');
        await writeFile(
          path.join(hooks, 'post-receive'),
          `#!/bin/sh\n# Lenix: tell ${shellQuote(url)} about pushes (lenix source hook ${name} --install)\nexec ${self} hook post-receive --url ${shellQuote(url)} --secret-file ${shellQuote(secretFile)}\n`,
          { mode: 0o755 },
        );
      }
      if (o.json) return printJson({ ...r, url });
      process.stdout.write(
        o.install
          ? `post-receive hook installed in ${path.resolve(o.install)}: pushes to ${r.source} build at once\n`
          : `webhook for ${r.source}: POST ${url}\nsecret (shown once): ${r.secret}\ncontent type application/json, push events\n`,
      );
    });

  p.command('hook')
    .description('git hooks that call Lenix')
    .command('post-receive')
    .description("read git's post-receive input (OLD NEW REF per line) and send a signed push event for each ref")
    .requiredOption('--url <url>', "the source's hook URL")
    .requiredOption('--secret-file <file>', "a file holding the source's webhook secret")
    .action(async (o: { url: string; secretFile: string }) => {
      const secret = (await readFile(o.secretFile, 'utf8')).trim();
      const input = await readStdin();
      for (const line of input.split('\n').filter(Boolean)) {
        const [before, after, ref] = line.trim().split(/\s+/);
        if (!before || !after || !ref) continue;
        const body = JSON.stringify({ ref, before, after });
        const res = await fetch(o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': hubSignature(secret, body) },
          body,
        }).catch((err: unknown) => {
          throw new LenixError('UNAVAILABLE', `cannot reach ${o.url}: ${(err as Error).message}`);
        });
        const answer = (await res.json().catch(() => ({}))) as { builds?: { id: number }[]; message?: string };
        if (!res.ok) throw new LenixError('BAD_REQUEST', `${ref}: HTTP ${res.status} ${answer.message ?? ''}`.trim());
        const ids = (answer.builds ?? []).map((b) => b.id);
        process.stderr.write(
          `lenix: ${ref}: ${ids.length > 0 ? `build ${ids.join(', ')} started` : 'nothing to build'}\n`,
        );
      }
    });
}

function shellQuote(s: string): string {
  const inner = s.replaceAll("'", "'\\''"); // close the quote, an escaped quote, open again
  return `'${inner}'`;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
