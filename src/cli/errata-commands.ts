import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { ADVISORY_STATUSES, ADVISORY_TYPES, SEVERITIES } from '../errata/advisory.js';
import type { AdvisoryJson } from '../client/lenix.js';
import { apiClientFor } from './config.js';
import { collect, printJson } from './output.js';

interface TextOpts {
  severity?: string;
  title?: string;
  synopsis?: string;
  description?: string;
  descriptionFile?: string;
  cve?: string[];
  bug?: string[];
  package?: string[];
  fromBuild?: string;
  reboot?: boolean;
  json?: boolean;
}

function withTextOptions(c: Command): Command {
  return c
    .addOption(new Option('--severity <s>', 'severity (required for security)').choices([...SEVERITIES]))
    .option('--title <text>', 'title')
    .option('--synopsis <text>', 'one-line summary')
    .option('--description <text>', 'description')
    .option('--description-file <file>', 'description from a file')
    .option('--cve <id>', 'a CVE it fixes (repeatable)', collect)
    .option('--bug <url>', 'a bug report it fixes (repeatable)', collect)
    .option('--package <nevra>', 'a package it ships, name-[epoch:]version-release.arch (repeatable)', collect)
    .option('--from-build <id>', 'every signed package of this build')
    .option('--reboot', 'a reboot is suggested after the update')
    .option('--json', 'print JSON');
}

async function body(o: TextOpts): Promise<Record<string, unknown>> {
  const description = o.descriptionFile ? await readFile(o.descriptionFile, 'utf8') : o.description;
  const references = [...(o.cve ?? []), ...(o.bug ?? [])];
  return {
    ...(o.severity ? { severity: o.severity } : {}),
    ...(o.title ? { title: o.title } : {}),
    ...(o.synopsis ? { synopsis: o.synopsis } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(references.length > 0 ? { references } : {}),
    ...(o.package ? { packages: o.package } : {}),
    ...(o.fromBuild ? { fromBuild: Number(o.fromBuild) } : {}),
    ...(o.reboot ? { rebootSuggested: true } : {}),
  };
}

function print(a: AdvisoryJson): void {
  const out = [
    `${a.id}  ${a.type}${a.severity ? ` (${a.severity})` : ''}  ${a.status}  v${a.version}  repository ${a.repo}`,
    `  ${a.title}`,
    ...(a.synopsis ? [`  ${a.synopsis}`] : []),
    `  issued ${a.issued}, updated ${a.updated}${a.upstreamId ? `, rebuild of ${a.upstreamId}` : ''}`,
    ...(a.cves.length > 0 ? [`  CVEs: ${a.cves.join(', ')}`] : []),
    ...a.references.filter((r) => r.type !== 'cve').map((r) => `  ${r.type}: ${r.href}`),
    ...a.packages.map((p) => `  package ${p.nevra}`),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

/** `lenix errata create|edit|approve|list|show|import`. */
export function addErrataCommands(p: Command): void {
  const e = p.command('errata').description('security, bugfix and enhancement advisories (updateinfo, OVAL, OSV)');
  withTextOptions(
    e
      .command('create')
      .description('draft an advisory (maintainer)')
      .requiredOption('--repo <name>', 'the repository it is for')
      .option('--id <id>', 'an explicit id (e.g. mirroring the upstream advisory number); default: the next free one')
      .addOption(new Option('--type <type>', 'advisory type').choices([...ADVISORY_TYPES]).makeOptionMandatory()),
  ).action(async (o: TextOpts & { repo: string; type: string; id?: string }, cmd: Command) => {
    const a = await (await apiClientFor(cmd)).errata.create({
      repo: o.repo,
      type: o.type,
      title: o.title ?? '',
      ...(o.id ? { id: o.id } : {}),
      ...(await body(o)),
    });
    if (o.json) return printJson(a);
    print(a);
  });
  withTextOptions(
    e.command('edit <id>').description('change an advisory (maintainer); a released one keeps its packages'),
  ).action(async (id: string, o: TextOpts, cmd: Command) => {
    const a = await (await apiClientFor(cmd)).errata.update(id, await body(o));
    if (o.json) return printJson(a);
    print(a);
  });
  e.command('approve <id>')
    .description('approve an advisory (maintainer): it goes out with the release that publishes its packages')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const a = await (await apiClientFor(cmd)).errata.approve(id);
      if (o.json) return printJson(a);
      print(a);
    });
  e.command('list')
    .option('--repo <name>')
    .addOption(new Option('--type <type>').choices([...ADVISORY_TYPES]))
    .addOption(new Option('--severity <s>').choices([...SEVERITIES]))
    .addOption(new Option('--status <s>').choices([...ADVISORY_STATUSES]))
    .option('--json', 'print JSON')
    .action(
      async (o: { repo?: string; type?: string; severity?: string; status?: string; json?: boolean }, cmd: Command) => {
        const q = new URLSearchParams(
          Object.entries({ repo: o.repo, type: o.type, severity: o.severity, status: o.status }).filter(
            (x): x is [string, string] => x[1] !== undefined,
          ),
        );
        const r = await (await apiClientFor(cmd)).errata.list(q);
        if (o.json) return printJson(r.errata);
        for (const a of r.errata)
          process.stdout.write(
            `${a.id.padEnd(16)} ${a.type.padEnd(11)} ${(a.severity ?? '-').padEnd(9)} ${a.status.padEnd(8)} ${a.repo.padEnd(12)} ${a.title}\n`,
          );
      },
    );
  e.command('show <id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const a = await (await apiClientFor(cmd)).errata.get(id);
      if (o.json) return printJson(a);
      print(a);
    });
  e.command('import <file>')
    .description(
      'propose advisories (drafts) from an upstream updateinfo.xml or OSV record, for packages Lenix built at that version or later',
    )
    .requiredOption('--repo <name>', 'the repository the proposals are for')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { repo: string; json?: boolean }, cmd: Command) => {
      const r = await (await apiClientFor(cmd)).errata.import({
        repo: o.repo,
        content: await readFile(file, 'utf8'),
      });
      if (o.json) return printJson(r);
      for (const a of r.proposed)
        process.stdout.write(
          `proposed ${a.id} (draft) for ${a.upstreamId}: ${a.packages.map((p) => p.nevra).join(', ')}\n`,
        );
      for (const s of r.skipped) process.stdout.write(`skipped ${s.upstream}: ${s.why}\n`);
    });
}
