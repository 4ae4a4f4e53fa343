import type { Command } from 'commander';
import { LenixError } from '../core/errors.js';
import type { TargetFieldsJson, TargetJson } from '../client/lenix.js';
import { apiClientFor } from './config.js';
import { collect, printJson, table } from './output.js';

interface TargetFlags {
  buildRepo?: string;
  fromRepo?: string[];
  externalRepo?: string[];
  key?: string[];
  arch?: string[];
  dist?: string;
  macro?: string[];
  releaseTo?: string;
  platform?: string;
  json?: boolean;
}

/** `--macro 'rhel 9'` → ['rhel', '9']: the name, then the value after the first space. */
function macros(flags: TargetFlags): Record<string, string> | undefined {
  if (flags.dist === undefined && flags.macro === undefined) return undefined;
  const out: Record<string, string> = {};
  if (flags.dist !== undefined) out['dist'] = flags.dist;
  for (const m of flags.macro ?? []) {
    const at = m.trim().search(/\s/);
    if (at <= 0)
      throw new LenixError('BAD_REQUEST', `--macro '${m.slice(0, 64)}': give NAME VALUE, e.g. --macro 'rhel 9'`);
    out[m.trim().slice(0, at).replace(/^%/, '')] = m.trim().slice(at).trim();
  }
  return out;
}

function fields(flags: TargetFlags): Partial<TargetFieldsJson> {
  const m = macros(flags);
  const urls = flags.externalRepo ?? [];
  if (urls.length !== (flags.key ?? []).length)
    throw new LenixError('BAD_REQUEST', 'give each --external-repo URL its --key FINGERPRINT, in the same order');
  return {
    ...(flags.buildRepo !== undefined ? { buildRepo: flags.buildRepo } : {}),
    ...(flags.fromRepo !== undefined ? { fromRepos: flags.fromRepo } : {}),
    ...(flags.externalRepo !== undefined
      ? { externalRepos: urls.map((url, i) => ({ url, key: flags.key![i]! })) }
      : {}),
    ...(flags.arch !== undefined ? { arches: flags.arch } : {}),
    ...(m !== undefined ? { macros: m } : {}),
    ...(flags.releaseTo !== undefined ? { releaseTo: flags.releaseTo === '' ? null : flags.releaseTo } : {}),
    ...(flags.platform !== undefined ? { platform: flags.platform === '' ? null : flags.platform } : {}),
  };
}

function printTarget(t: TargetJson): void {
  const lines = [
    `target ${t.name}`,
    `  build repository  ${t.buildRepo}  (every signed build lands here at once: the buildroots' source)`,
    `  also from         ${t.fromRepos.join(', ') || '-'}`,
    `  external          ${t.externalRepos.map((e) => `${e.url} (key ${e.key})`).join(', ') || '-'}`,
    `  arches            ${t.arches.join(', ')}`,
    `  macros            ${
      Object.entries(t.macros)
        .map(([k, v]) => `%${k} ${v}`)
        .join('; ') || '-'
    }`,
    `  releases go to    ${t.releaseTo ?? '-'}`,
    `  platform          ${t.platform ?? '-'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function withTargetOptions(c: Command): Command {
  return c
    .option('--build-repo <repo>', 'the build repository (created when missing)')
    .option('--from-repo <repo>', 'another repository buildroots install from (repeatable)', collect)
    .option('--external-repo <url>', 'a dnf repository outside Lenix buildroots install from (repeatable)', collect)
    .option('--key <fingerprint>', 'the key of each --external-repo, in the same order (lenix keys add)', collect)
    .option('--arch <arch>', 'an architecture the target builds for (repeatable)', collect)
    .option('--dist <dist>', 'the %dist of its builds, e.g. .lx9')
    .option('--macro <"name value">', "another rpm macro of its builds, e.g. 'rhel 9' (repeatable)", collect)
    .option('--release-to <repo>', 'the repository its releases usually go to')
    .option(
      '--platform <name>',
      'a platform Lenix maintains (el9): its package in every buildroot, its macros in every task',
    )
    .option('--json', 'print JSON');
}

/** `lenix target create|edit|list|show`: build targets (issue 14). */
export function addTargetCommands(p: Command): void {
  const target = p.command('target').description('build targets: buildroot repositories, macros, arches');
  withTargetOptions(target.command('create <name>').description('create a build target')).action(
    async (name: string, o: TargetFlags, cmd: Command) => {
      if (!o.buildRepo || !o.arch)
        throw new LenixError('BAD_REQUEST', 'lenix target create needs --build-repo and --arch');
      const t = await (await apiClientFor(cmd)).targets.create({
        name,
        ...fields(o),
        buildRepo: o.buildRepo,
        arches: o.arch,
      });
      if (o.json) return printJson(t);
      printTarget(t);
    },
  );
  withTargetOptions(target.command('edit <name>').description('change a build target')).action(
    async (name: string, o: TargetFlags, cmd: Command) => {
      const t = await (await apiClientFor(cmd)).targets.edit(name, fields(o));
      if (o.json) return printJson(t);
      printTarget(t);
    },
  );
  target
    .command('show <name>')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }, cmd: Command) => {
      const t = await (await apiClientFor(cmd)).targets.get(name);
      if (o.json) return printJson(t);
      printTarget(t);
    });
  target
    .command('list')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { targets } = await (await apiClientFor(cmd)).targets.list();
      if (o.json) return printJson(targets);
      process.stdout.write(
        `${table(
          targets.map((t) => [t.name, t.buildRepo, t.arches.join(','), t.macros['dist'] ?? '-', t.releaseTo ?? '-']),
          ['NAME', 'BUILD REPO', 'ARCHES', 'DIST', 'RELEASE TO'],
        )}\n`,
      );
    });
}
