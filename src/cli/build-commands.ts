import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { addHookCommands } from './hook-commands.js';
import type { Command } from 'commander';
import type { BatchJson, BuildJson, LenixClient } from '../client/lenix.js';
import { LenixError } from '../core/errors.js';
import { taskStage } from '../core/task-stage.js';
import { apiClientFor as client } from './config.js';
import { followLog } from './follow.js';
import { ago, collect, duration, printJson, table } from './output.js';

/** Sources, builds, logs, agents and the lookaside area: `lenix source|build|builds|logs|agents|lookaside`. */
export function addBuildCommands(p: Command, state: { code: number }): void {
  const source = p.command('source').description('git sources');
  source
    .command('add <name> <url>')
    .description('mirror a git repository (local path or URL)')
    .option('--branch <branch>', 'branch to build (default: the remote HEAD)')
    .option('--watch', 'build every new commit on the branch (polling; a push hook builds at once)', false)
    .option('--target <name>', 'build target for commits that are pushed or watched')
    .option('--json', 'print JSON')
    .action(
      async (
        name: string,
        url: string,
        o: { branch?: string; watch: boolean; target?: string; json?: boolean },
        cmd: Command,
      ) => {
        const api = await client(cmd);
        const resolved = /^[a-z]+:\/\//.test(url) || /^[\w.-]+@[\w.-]+:/.test(url) ? url : path.resolve(url);
        const s = await api.sources.add({
          name,
          url: resolved,
          branch: o.branch,
          watch: o.watch,
          target: o.target,
        });
        if (o.json) return printJson(s);
        process.stdout.write(
          `source ${s.name}: ${s.url} (${s.branch}) at ${s.head.slice(0, 12)}${s.watch ? ', watching' : ''}\n`,
        );
        if (s.build) process.stdout.write(`build ${s.build.id} queued\n`);
      },
    );
  addHookCommands(p, source);
  source
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { sources } = await (await client(cmd)).sources.list();
      if (o.json) return printJson(sources);
      process.stdout.write(
        `${table(
          sources.map((s) => [s.name, s.branch, s.watch ? 'yes' : 'no', s.url]),
          ['NAME', 'BRANCH', 'WATCH', 'URL'],
        )}\n`,
      );
    });

  p.command('build <target> [more...]')
    .description(
      'build SOURCE[@REF]; `lenix build --batch SRC... --target T` (ordered from their specs); `lenix build show|cancel ID`',
    )
    .option('--batch', 'build all the sources given, ordered by their BuildRequires and Provides', false)
    .option('--wait', 'wait for the build to finish, showing progress', false)
    .option('--priority <n>', 'priority (-100..100)')
    .option('--arch <arch>', 'target architecture (repeatable)', collect)
    .option('--repo <name>', 'the repository the build is meant for (its test root includes that repository)')
    .option('--target <name>', 'the build target: its macros, and BuildRequires installed from its repositories')
    .option('--json', 'print JSON')
    .action(
      async (
        target: string,
        more: string[],
        o: {
          wait: boolean;
          batch: boolean;
          priority?: string;
          arch?: string[];
          repo?: string;
          target?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const api = await client(cmd);
        if (o.batch) {
          if (!o.target) throw new LenixError('BAD_REQUEST', 'lenix build --batch needs --target');
          const b = await api.batches.create({ target: o.target, sources: [target, ...more] });
          return reportBatch(api, b, o, state);
        }
        const id = more[0];
        if (more.length > 1 || (id !== undefined && target !== 'show' && target !== 'cancel'))
          throw new LenixError('BAD_REQUEST', 'lenix build takes one source (or --batch for several)');
        if (target === 'show' || target === 'cancel') {
          const n = Number(id);
          if (!Number.isInteger(n) || n <= 0)
            throw new LenixError('BAD_REQUEST', `lenix build ${target} needs a build id`);
          const b = target === 'show' ? await api.builds.get(n) : await api.builds.cancel(n);
          if (o.json) return printJson(b);
          return printBuild(target === 'show' ? b : await api.builds.get(n));
        }
        const at = target.indexOf('@');
        const name = at < 0 ? target : target.slice(0, at);
        const ref = at < 0 ? undefined : target.slice(at + 1);
        const b = await api.builds.create({
          source: name,
          ref,
          priority: o.priority === undefined ? undefined : Number(o.priority),
          arches: o.arch,
          repo: o.repo,
          target: o.target,
        });
        if (!o.wait) {
          if (o.json) return printJson(b);
          process.stdout.write(
            `build ${b.id}: ${b.package}-${b.evr} from ${b.source}@${b.commit.slice(0, 12)} queued\n`,
          );
          return;
        }
        process.stderr.write(`build ${b.id}: ${b.package}-${b.evr} from ${b.source}@${b.commit.slice(0, 12)}\n`);
        const done = await api.builds.wait(b.id, (line) => process.stderr.write(`${line}\n`));
        if (o.json) printJson(done);
        else printBuild(done);
        if (done.state !== 'succeeded') state.code = 1;
      },
    );

  p.command('chain-build <sources...>')
    .description(
      "build groups of sources of a target in order: `A B : C D` starts C and D once A and B are in the target's build repository",
    )
    .requiredOption('--target <name>', 'the build target')
    .option('--wait', 'wait for the batch to finish, showing progress', false)
    .option('--json', 'print JSON')
    .action(async (sources: string[], o: { target: string; wait: boolean; json?: boolean }, cmd: Command) => {
      const groups: string[][] = [[]];
      for (const s of sources) {
        if (s === ':') groups.push([]);
        else groups.at(-1)!.push(s);
      }
      if (groups.some((g) => g.length === 0))
        throw new LenixError('BAD_REQUEST', 'every group between the `:` separators needs at least one source');
      const b = await (await client(cmd)).batches.create({ target: o.target, groups });
      await reportBatch(await client(cmd), b, o, state);
    });

  p.command('rebuild')
    .description("rebuild every source in a target's build repository, in dependency order (a mass rebuild)")
    .requiredOption('--target <name>', 'the build target')
    .option('--wait', 'wait for the batch to finish, showing progress', false)
    .option('--json', 'print JSON')
    .action(async (o: { target: string; wait: boolean; json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      await reportBatch(api, await api.batches.rebuild(o.target), o, state);
    });

  p.command('batch <action> <id>')
    .description('`lenix batch show ID` or `lenix batch cancel ID` (cancels its running builds)')
    .option('--json', 'print JSON')
    .action(async (action: string, id: string, o: { json?: boolean }, cmd: Command) => {
      const n = Number(id);
      if (!['show', 'cancel'].includes(action) || !Number.isInteger(n) || n <= 0)
        throw new LenixError('BAD_REQUEST', 'lenix batch show|cancel ID');
      const api = await client(cmd);
      const b = action === 'show' ? await api.batches.get(n) : await api.batches.cancel(n);
      if (o.json) return printJson(b);
      printBatch(b);
    });

  p.command('builds')
    .description('list builds, newest first')
    .option('--source <name>')
    .option('--state <state>')
    .option('--limit <n>', 'how many', '30')
    .option('--json', 'print JSON')
    .action(async (o: { source?: string; state?: string; limit: string; json?: boolean }, cmd: Command) => {
      const { builds } = await (await client(cmd)).builds.list({
        limit: o.limit,
        source: o.source || undefined,
        state: o.state || undefined,
      });
      if (o.json) return printJson(builds);
      process.stdout.write(
        `${table(
          builds.map((b) => [
            b.id,
            b.source,
            `${b.package}-${b.evr}`,
            b.commit.slice(0, 12),
            b.state,
            ago(b.createdAt),
            duration(b.startedAt, b.finishedAt),
          ]),
          ['ID', 'SOURCE', 'PACKAGE', 'COMMIT', 'STATE', 'CREATED', 'TOOK'],
        )}\n`,
      );
    });

  p.command('logs <task>')
    .description('print a task log; --follow streams it live until the task ends')
    .option('-f, --follow', 'follow the log live', false)
    .action(async (task: string, o: { follow: boolean }, cmd: Command) => {
      const api = await client(cmd);
      const n = Number(task);
      if (!Number.isInteger(n) || n <= 0) throw new LenixError('BAD_REQUEST', 'a task id is a positive integer');
      if (o.follow) {
        await followLog(api, n, (t) => process.stdout.write(t));
        return;
      }
      process.stdout.write(await api.tasks.log(n));
    });

  p.command('agents')
    .description('list registered agents')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { agents } = await (await client(cmd)).agents.list();
      if (o.json) return printJson(agents);
      process.stdout.write(
        `${table(
          agents.map((a) => [
            a.id,
            a.name,
            a.role,
            a.arches.join(','),
            a.online ? 'online' : 'offline',
            ago(a.lastSeenAt),
          ]),
          ['ID', 'NAME', 'ROLE', 'ARCHES', 'STATE', 'SEEN'],
        )}\n`,
      );
    });

  p.command('lookaside')
    .description('the lookaside area for source tarballs kept out of git')
    .command('upload <file>')
    .option('--source <name>', "the source it is for: prints the line its spec's layout needs")
    .option('--json', 'print JSON')
    .action(async (file: string, o: { source?: string; json?: boolean }, cmd: Command) => {
      const api = await client(cmd);
      await stat(file);
      const r = await api.lookaside.upload(path.basename(file), createReadStream(file), o.source);
      if (o.json) return printJson(r);
      process.stdout.write(
        r.metadataLine
          ? `${r.sha256}  ${r.size} bytes\nadd this line to .${o.source}.metadata:\n${r.metadataLine}\n`
          : `${r.sha256}  ${r.size} bytes\nadd one line to .NAME.metadata, by where the spec is (--source NAME says which):\n  spec in SPECS/:   ${r.layouts.specs}\n  spec at the root: ${r.layouts.root}\n`,
      );
    });
}

function printBuild(b: BuildJson): void {
  const out: string[] = [];
  out.push(`build ${b.id}  ${b.package}-${b.evr}  ${b.state}${b.reason ? `  (${b.reasonCode}: ${b.reason})` : ''}`);
  out.push(`source ${b.source}@${b.ref}  commit ${b.commit}  tree ${b.tree}`);
  out.push(`created ${b.createdAt} by ${b.createdBy}, took ${duration(b.startedAt, b.finishedAt)}`);
  for (const t of b.tasks ?? []) {
    out.push(
      `  task ${t.id}  ${taskStage(t)}  ${t.state}  attempts ${t.attempts}/${t.maxAttempts}  ${duration(t.startedAt, t.finishedAt)}${t.reason ? `  ${t.reasonCode}: ${t.reason}` : ''}`,
    );
    for (const a of t.artifacts) out.push(`    ${a.name}  sha256:${a.sha256}  ${a.size} bytes`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

function printBatch(b: BatchJson): void {
  const lines = [`batch ${b.id} (target ${b.target}): ${b.state}${b.reason ? ` — ${b.reason}` : ''}`];
  b.groups.forEach((g, i) => {
    const started = new Map(g.builds.map((x) => [x.source, x]));
    lines.push(
      `  group ${i + 1}: ${g.sources
        .map((s) => {
          const x = started.get(s);
          return x ? `${s} (build ${x.id} ${x.state})` : `${s} (waiting)`;
        })
        .join(', ')}`,
    );
  });
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function reportBatch(
  api: LenixClient,
  b: BatchJson,
  o: { wait: boolean; json?: boolean | undefined },
  state: { code: number },
): Promise<void> {
  if (!o.wait) {
    if (o.json) return printJson(b);
    return printBatch(b);
  }
  process.stderr.write(`batch ${b.id}: ${b.groups.map((g) => g.sources.join(' ')).join(' : ')}\n`);
  const done = await api.batches.wait(b.id, (line) => process.stderr.write(`${line}\n`));
  if (o.json) printJson(done);
  else printBatch(done);
  if (done.state !== 'succeeded') state.code = 1;
}
